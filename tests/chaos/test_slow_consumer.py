"""Slow consumers beside fast ones: sockets that stop reading while a worker sends many updates.

Issue 14, item 6. The Redis store, one node, a worker sending 2,000 updates of ~15 KB to a job
(300 a second), twice: first to a job only fast clients watch (the baseline), then to a job ten
stalled clients watch too. A stalled client subscribes and then never reads again (its receive
buffer is 4 KB, so the kernel holds little for it: what it is owed piles up in the node, or is
dropped, or it is cut off). Five fast clients watch each job and keep the client rule.

- The fast clients beside the stalled ones get every update, exactly seq 1..N in order; their
  latency is printed beside the baseline's.
- The node's memory stays bounded: its peak RSS grows less than 200 MB over both runs. Printed
  beside it: the growth of the baseline run, the growth the stalled clients added on top, and
  the bytes they were owed (what a per-socket copy of every event would hold).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
from dataclasses import dataclass
from typing import Any

import pytest

from tests.chaos.faults import Spawned, figures, fleet, read_fleet, worker
from tests.chaos.support import RawWebSocket, peak_rss, rss
from tests.support import ServerProcess

PREFIXES = ("base-", "slow-")  # jobs base-0 (the baseline) and slow-0 (the stalled clients')
JOB = "slow-0"
UPDATES = 2000
RATE = 300.0
PAD = 15_000  # bytes in each update's extra; the merged extra must stay under 16384
SLOW = 10
FAST = 5
MB = 1024 * 1024
GROWTH_BOUND = 200 * MB


@dataclass
class Outcome:
    baseline: list[dict[str, Any]]  # the fast clients of the job no stalled client watches
    fast: list[dict[str, Any]]  # the fast clients beside the stalled ones
    rss_before: int
    peak_baseline: int
    peak: int
    rss_after: int
    owed: int
    slow_cut_off: int


async def stalled_subscriber(port: int, job_id: str = JOB) -> RawWebSocket:
    """A websocket that subscribes to the job, then never reads: a 4 KB receive buffer."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert head.startswith(b"HTTP/1.1 101"), head
    raw = RawWebSocket(reader, writer)
    assert await raw.frames(10, until=lambda payload: payload.startswith(b"0{"))
    assert await raw.send("40")
    assert await raw.frames(10, until=lambda payload: payload.startswith(b"40"))
    assert await raw.send("421" + json.dumps(["subscribe", {"job_id": job_id}]))
    acks = await raw.frames(10, until=lambda payload: payload.startswith(b"431"))
    assert acks and b'"ok":true' in acks[-1][1].replace(b" ", b""), acks
    return raw


@pytest.fixture(scope="module")
async def outcome(redis_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    """The scenario, run once for the two tests below."""
    import redis

    with redis.Redis.from_url(redis_server.url) as client:
        client.flushdb()
    tmp_path = tmp_path_factory.mktemp("slow")
    node = ServerProcess({"TIDINGS_REDIS_URL": redis_server.url}, tmp_path / "node.log")
    outs = [tmp_path / "baseline.jsonl", tmp_path / "beside.jsonl"]
    spawned: list[Spawned] = []
    slow: list[RawWebSocket] = []
    try:
        await asyncio.to_thread(node.start)
        assert node.process is not None
        pid = node.process.pid
        pairs = zip(PREFIXES, outs, strict=True)
        fleets = [fleet(node.url, prefix, 1, FAST, out) for prefix, out in pairs]
        for each in fleets:
            spawned.append(each)
            await each.start()
            await each.line("ready", within=30)
        for _ in range(SLOW):
            slow.append(await stalled_subscriber(node.port))
        await asyncio.sleep(0.5)
        before = rss(pid)
        peaks = []
        for prefix, fast in zip(PREFIXES, fleets, strict=True):
            feeder = worker(redis_server.url, prefix, 1, UPDATES, RATE, pad=PAD)
            spawned.append(feeder)
            await feeder.start()
            await feeder.finish(within=60)
            await fast.line("done", within=60)
            peaks.append(peak_rss(pid))
        after = rss(pid)
        cut_off = 0
        for raw in slow:
            with contextlib.suppress(Exception):
                raw.writer.write(RawWebSocket.frame(b"3"))  # anything: is the socket still open?
                await raw.writer.drain()
            cut_off += raw.writer.is_closing() or raw.reader.at_eof()
    finally:
        for raw in slow:
            await raw.close()
        for each in spawned:
            await each.stop()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(node.stop)
    event_size = PAD + 400  # the padding, the rest of the event and its framing, roughly
    baseline, beside = (read_fleet(out) for out in outs)
    owed = SLOW * UPDATES * event_size
    return Outcome(baseline, beside, before, peaks[0], peaks[1], after, owed, cut_off)


async def test_fast_clients_beside_stalled_ones_get_every_update_in_order(
    outcome: Outcome,
) -> None:
    for clients in (outcome.baseline, outcome.fast):
        assert len(clients) == FAST
        for client in clients:
            assert client["applied"] == list(range(1, UPDATES + 1))
            assert client["status"] == "done" and len(client["epochs"]) == 1
    alone, beside = (
        [applied - sent for client in clients for applied, sent in client["arrivals"]]
        for clients in (outcome.baseline, outcome.fast)
    )
    print(
        f"\nfast clients' latency, no stalled client on the job: {figures(alone)}"
        f"\nfast clients' latency beside {SLOW} stalled ones: {figures(beside)}"
    )


async def test_a_node_with_stalled_clients_keeps_its_memory_bounded(outcome: Outcome) -> None:
    growth = outcome.peak - outcome.rss_before
    print(
        f"\nnode RSS {outcome.rss_before / MB:.0f} MB before, peak {outcome.peak / MB:.0f} MB "
        f"(+{growth / MB:.0f} MB), {outcome.rss_after / MB:.0f} MB after; the baseline run "
        f"grew the peak {(outcome.peak_baseline - outcome.rss_before) / MB:.0f} MB, the run "
        f"beside the stalled clients {(outcome.peak - outcome.peak_baseline) / MB:.0f} MB more;"
        f" owed to the {SLOW} stalled clients: {outcome.owed / MB:.0f} MB; stalled clients the "
        f"node cut off: {outcome.slow_cut_off} of {SLOW}"
    )
    assert growth < GROWTH_BOUND
