"""A soak: ten minutes of steady traffic and client churn on one node; its RSS must stay flat.

Opt-in, never part of the default run (tests/chaos/conftest.py deselects it):

    .venv/bin/pytest tests/chaos -m soak -s

``TIDINGS_SOAK_SECONDS`` shortens or lengthens it (600 by default). The Redis store, one node;
round after round (30 s each) a worker updates 10 fresh jobs at 100 updates a second while 100
new raw clients (10 a job) watch them and then leave, and 2 stalled clients subscribe and never
read. Every round's clients must get exactly 1..N of their job. The node's RSS is sampled every
10 s and printed; after the first round (warm-up) it may grow by at most 50 MB.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.chaos.faults import Spawned, figures, fleet, read_fleet, worker
from tests.chaos.support import RawWebSocket, rss
from tests.chaos.test_slow_consumer import stalled_subscriber
from tests.support import ServerProcess

SECONDS = float(os.environ.get("TIDINGS_SOAK_SECONDS", "600"))
ROUND = 30.0
JOBS = 10
CLIENTS = 100
RATE = 100.0
UPDATES = int(ROUND * RATE / JOBS) - 10  # per job, so a round ends in about ROUND seconds
STALLED = 2
SAMPLE = 10.0
MB = 1024 * 1024
FLAT_BOUND = 50 * MB


@pytest.mark.soak
@pytest.mark.timeout(SECONDS + 600)
async def test_a_node_under_ten_minutes_of_traffic_and_churn_keeps_its_memory_flat(
    redis_url: str, tmp_path: Path
) -> None:
    node = ServerProcess({"TIDINGS_REDIS_URL": redis_url}, tmp_path / "node.log")
    samples: list[tuple[float, int]] = []
    spawned: list[Spawned] = []
    stalled: list[RawWebSocket] = []
    latencies: list[float] = []
    rounds: list[dict[str, Any]] = []
    sampling: asyncio.Task[None] | None = None
    try:
        await asyncio.to_thread(node.start)
        assert node.process is not None
        pid = node.process.pid
        started = time.monotonic()
        sampling = asyncio.create_task(_sample(pid, started, samples))
        index = 0
        while time.monotonic() - started < SECONDS:
            prefix = f"soak-{index}-"
            out = tmp_path / f"round-{index}.jsonl"
            clients = fleet(node.url, prefix, JOBS, CLIENTS, out)
            feeder = worker(redis_url, prefix, JOBS, UPDATES, RATE)
            spawned[:] = [clients, feeder]
            await clients.start()
            await clients.line("ready", within=60)
            for raw in stalled:
                await raw.close()
            stalled[:] = [await stalled_subscriber(node.port, f"{prefix}0") for _ in range(STALLED)]
            await feeder.start()
            await feeder.finish(within=ROUND * 4)
            await clients.line("done", within=60)
            watchers = read_fleet(out)
            assert len(watchers) == CLIENTS
            for client in watchers:
                assert client["applied"] == list(range(1, UPDATES + 1)), (index, client["job_id"])
            latencies += [a - s for client in watchers for a, s in client["arrivals"]]
            rounds.append({"round": index, "at": time.monotonic() - started, "rss": rss(pid)})
            index += 1
    finally:
        if sampling is not None:
            sampling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampling
        for raw in stalled:
            await raw.close()
        for each in spawned:
            await each.stop()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(node.stop)

    print(f"\n{len(rounds)} rounds of {JOBS} jobs x {UPDATES} updates, {CLIENTS} clients each")
    print("  t (s)   node RSS (MB)")
    for at, value in samples:
        print(f"  {at:6.0f}   {value / MB:8.1f}")
    print(f"update latency over the whole soak: {figures(latencies)}")
    assert len(rounds) >= 2, "too short to tell: a warm-up round and one more at least"
    warm = rounds[0]["rss"]
    later = [value for at, value in samples if at >= rounds[0]["at"]]
    growth = max(later) - warm
    print(f"RSS after the warm-up round {warm / MB:.1f} MB, highest after it +{growth / MB:.1f} MB")
    assert growth < FLAT_BOUND


async def _sample(pid: int, started: float, sink: list[tuple[float, int]]) -> None:
    while True:
        sink.append((time.monotonic() - started, rss(pid)))
        await asyncio.sleep(SAMPLE)
