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

And, on a node in this process: a stalled client does not hold its connection past its ping
timeout (it answers no PING either), while a client beside it that reads goes on receiving.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import select
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from tidings import ProgressEmitter, Settings
from tidings.realtime.connections import close_all
from tidings.web.keys import SIO
from tidings.web.transport import _Socket, _WebSocket

from tests.chaos.faults import Spawned, figures, fleet, read_fleet, worker
from tests.chaos.support import RawWebSocket, peak_rss, rss
from tests.support import ServerProcess, Watcher, eventually, running_app

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


#: engine.io's ping interval and timeout on the node of the test below (25 s and 20 s by
#: default); the flood fills the stalled client's buffers in about 1.3 s, well before.
PING_INTERVAL, PING_TIMEOUT = 0.5, 5.0
#: How long after its ping timeout the stalled client's connection may take to end: the
#: service task forgets a closed socket on its next visit (within PING_TIMEOUT seconds).
ENDS_WITHIN = PING_TIMEOUT + 3.0


@pytest.mark.parametrize("aborting", [True, False], ids=["aborted", "control"])
async def test_a_stalled_client_is_cut_off_once_its_ping_timeout_has_passed(
    aborting: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client subscribes, then reads nothing more while a worker floods its job: the node's
    writer waits in a send for it to read. Once the client has missed its PONG the node ends
    the connection: engine.io forgets it, its reader and writer end, and the client's TCP
    connection is reset. A client beside it that reads gets every update. Control arm: without
    the abort the connection is still held, its writer still sending, well after the bound."""
    if not aborting:
        monkeypatch.setattr(_WebSocket, "abort", lambda self: None)
    async with running_app(Settings(coalesce_window=0)) as (url, app):
        engine = app[SIO].eio
        engine.ping_interval, engine.ping_timeout = PING_INTERVAL, PING_TIMEOUT
        reader = await Watcher(url).connect()
        await reader.subscribe(JOB)
        stalled = await stalled_subscriber(int(url.rsplit(":", 1)[1]))
        (sid,) = set(engine.sockets) - {reader.client.eio.sid}
        socket_ = engine.sockets[sid]
        stuck_at_timeout: list[bool] = []
        namespace = app[SIO].namespace_handlers["/"]
        on_disconnect = namespace.on_disconnect

        async def record(sio_sid: str, reason: object = None) -> None:  # the real handler runs
            if app[SIO].manager.eio_sid_from_sid(sio_sid, "/") == sid:
                assert reason == "ping timeout"
                stuck_at_timeout.append(socket_._writer is not None)
            await on_disconnect(sio_sid, reason)

        def ended() -> bool:
            return (
                sid not in engine.sockets
                and sid not in engine.websockets  # its handler, the reader, has returned
                and socket_._writer is None
                and hung_up(stalled.writer.get_extra_info("socket"))
            )

        namespace.on_disconnect = record
        emitter = ProgressEmitter.for_app(app)
        flooding = asyncio.create_task(flood(emitter))
        try:
            await eventually(lambda: bool(stuck_at_timeout), within=30, what="the ping timeout")
            assert stuck_at_timeout == [True]  # the writer was waiting for the client to read
            assert await within(ENDS_WITHIN, ended) == aborting
            assert (socket_._writer is not None) == (not aborting)  # still sending, or done
            flooding.cancel()
            last = await emitter.send_progress(JOB, "done", 100)
            assert last is not None
            seq = last["seq"]
            await eventually(lambda: reader.seqs(JOB)[-1:] == [seq], what="the last update")
            assert reader.seqs(JOB) == list(range(1, seq + 1))
        finally:
            flooding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flooding
            await reader.close()
            await stalled.close()


@pytest.mark.parametrize("cutting", [True, False], ids=["cut", "control"])
async def test_closing_every_connection_cuts_off_a_stalled_client(
    cutting: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node closes its connections (``close_all``, as after a gap in its Redis subscription)
    while a client that stopped reading holds a send: once the bound has passed its connection
    is reset, its reader and writer end. Control arm: without the cut the close only gives up,
    and the connection stays held (no ping timeout comes to its rescue within the test)."""
    if not cutting:
        monkeypatch.setattr(_Socket, "cut", lambda self: None)
    async with running_app(Settings(coalesce_window=0)) as (url, app):
        engine = app[SIO].eio
        engine.ping_timeout = 120.0  # the ping timeout, which also resets it, stays out of this
        stalled = await stalled_subscriber(int(url.rsplit(":", 1)[1]))
        ((sid, socket_),) = engine.sockets.items()
        flooding = asyncio.create_task(flood(ProgressEmitter.for_app(app)))
        try:
            await eventually(
                lambda: socket_._writer is not None and paused(socket_),
                within=30,
                what="the writer waiting for the client to read",
            )
            assert await close_all(engine, 0.5) == 1  # its close did not finish

            def ended() -> bool:
                return (
                    sid not in engine.websockets  # its handler, the reader, has returned
                    and socket_._writer is None
                    and hung_up(stalled.writer.get_extra_info("socket"))
                )

            assert await within(3.0, ended) == cutting
        finally:
            flooding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flooding
            await stalled.close()


@pytest.mark.parametrize("releasing", [True, False], ids=["released", "control"])
async def test_a_writer_cancelled_mid_send_releases_the_reader_waiting_for_it(
    releasing: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client that stopped reading sends its close frame: the reader ends and waits for the
    writer, stuck in a send, to close the websocket. The writer cancelled there (as at
    shutdown) releases it: the handler returns and the connection, whose unsent bytes the
    client will never take, is reset. Control arm: a writer that does not release leaves the
    handler waiting."""
    async with running_app(Settings(coalesce_window=0)) as (url, app):
        engine = app[SIO].eio
        stalled = await stalled_subscriber(int(url.rsplit(":", 1)[1]))
        ((sid, socket_),) = engine.sockets.items()
        flooding = asyncio.create_task(flood(ProgressEmitter.for_app(app)))
        try:
            await eventually(
                lambda: socket_._writer is not None and socket_._reading.backed_up(),
                within=30,
                what="the writer waiting for the client to read",
            )
            flooding.cancel()
            stalled.writer.write(RawWebSocket.frame(b"\x03\xe8", opcode=8))  # its close frame
            await eventually(
                lambda: isinstance(socket_._written, asyncio.Future), what="the reader waiting"
            )
            if not releasing:
                monkeypatch.setattr(_Socket, "_done_writing", lambda self: None)
            socket_._writer.cancel()

            def ended() -> bool:
                return sid not in engine.websockets and hung_up(
                    stalled.writer.get_extra_info("socket")
                )

            assert await within(ENDS_WITHIN, ended) == releasing
        finally:
            flooding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flooding
            await stalled.close()


async def flood(emitter: ProgressEmitter) -> None:
    """Updates of ~15 KB to the job, as fast as the loop lets the clients read them."""
    pad = "x" * PAD
    for n in itertools.count():
        await emitter.send_progress(JOB, "extracting", 50, extra={"pad": pad, "n": n})
        await asyncio.sleep(0.005)  # the in-process store never yields: let the clients run


async def within(bound: float, condition: Callable[[], bool]) -> bool:
    """Whether ``condition`` holds within ``bound`` seconds (waited for, not slept)."""
    with contextlib.suppress(TimeoutError):
        await eventually(condition, within=bound)
        return True
    return False


def paused(socket_: _Socket) -> bool:
    """The socket's transport is above its high-water mark: a send waits for the peer to read."""
    reading = socket_._reading
    return reading is not None and reading.environ["aiohttp.request"].protocol.writing_paused


def hung_up(sock: Any) -> bool:
    """The peer closed or reset this TCP connection (asked without reading from it)."""
    poll = select.poll()
    poll.register(sock.fileno(), select.POLLRDHUP)
    return any(
        events & (select.POLLRDHUP | select.POLLHUP | select.POLLERR) for _, events in poll.poll(0)
    )
