"""Redis stops answering (SIGSTOP) for 5 s, then resumes (SIGCONT).

Issue 14, item 6. The Redis store, one node, a worker updating 8 jobs steadily, 48 raw clients
(6 a job) keeping the client rule. While Redis is frozen the worker's sends wait or fail and are
sent again (the same payload: a retried update is never doubled, docs/protocol.md, Retries), the
node's subscription probe finds its subscription silent and rebuilds it, and ``/healthz`` must
still answer. After the resume every client must end with exactly seq 1..N of its job in the one
epoch it began with (Redis lost nothing): no duplicate, no hole; that exact sequence is what
would catch a doubled retry or a lost event. One client a job reconnects without ``since``; what
it missed is printed, not asserted (whether a plain reconnect loses anything here depends on
timing). How long delivery stalled and the latency after the resume are printed.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import time
from pathlib import Path

import aiohttp

from tests.chaos.faults import figures, jobs_under_way, read_fleet

PAUSE = 5.0
JOBS = 8
CLIENTS = 48
PLAIN = JOBS  # one control client a job: reconnects without since (its losses are printed)
UPDATES = 120  # per job
RATE = 80.0  # updates a second, all jobs: 10 a second each
PREFIX = "pause-"
#: The longest /healthz may take while Redis is frozen: it does not need Redis.
HEALTHZ_BOUND = 5.0


async def test_a_redis_frozen_for_five_seconds_loses_and_doubles_nothing(tmp_path: Path) -> None:
    healthz: list[tuple[int, float]] = []
    scene = jobs_under_way(
        tmp_path,
        PREFIX,
        jobs=JOBS,
        clients=CLIENTS,
        updates=UPDATES,
        rate=RATE,
        started=UPDATES // 4,
        plain=PLAIN,
    )
    async with scene as run:
        assert run.redis.process is not None
        os.kill(run.redis.process.pid, signal.SIGSTOP)
        try:
            paused_at = time.time()
            await _probe_healthz(run.node.url, PAUSE, healthz)
        finally:
            os.kill(run.redis.process.pid, signal.SIGCONT)
        resumed_at = time.time()

        summary = await run.finish()

    watchers = read_fleet(run.out)
    assert len(watchers) == CLIENTS
    plain = [client for client in watchers if client["plain"]]
    watchers = [client for client in watchers if not client["plain"]]
    for client in watchers:
        assert client["applied"] == list(range(1, UPDATES + 1)), client["job_id"]
        assert len(client["epochs"]) == 1 and client["status"] == "done", client
    assert len(healthz) >= 5, "the node was probed too rarely to tell"
    assert all(status == 200 for status, _ in healthz), healthz
    assert max(seconds for _, seconds in healthz) < HEALTHZ_BOUND, healthz

    arrivals = sorted(applied for client in watchers for applied, _ in client["arrivals"])
    stall, stall_from = max((b - a, a) for a, b in itertools.pairwise(arrivals))
    after = [a - s for client in watchers for a, s in client["arrivals"] if s >= resumed_at]
    before = [a - s for client in watchers for a, s in client["arrivals"] if s < paused_at]
    reconnects = sum(len(client["back"]) for client in watchers)
    print(
        f"\nRedis frozen {resumed_at - paused_at:.1f} s; delivery stalled {stall:.1f} s "
        f"(from {stall_from - paused_at:+.1f} s after the freeze); worker sends refused after "
        f"the emitter's retries: {summary['errors']}, longest send {summary['longest_send']} s;"
        f" client reconnects: {reconnects}\n/healthz during the freeze: "
        f"{figures([seconds for _, seconds in healthz])}\nlatency before: {figures(before)}"
        f"\nlatency of updates sent after the resume: {figures(after)}"
        f"\ncontrol clients (reconnecting without since), events missed: "
        f"{[UPDATES - len(set(client['applied'])) for client in plain]}"
    )


async def _probe_healthz(url: str, within: float, sink: list[tuple[int, float]]) -> None:
    deadline = time.monotonic() + within
    timeout = aiohttp.ClientTimeout(total=HEALTHZ_BOUND * 2)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while time.monotonic() < deadline:
            started = time.monotonic()
            async with session.get(f"{url}/healthz") as reply:
                await reply.read()
                sink.append((reply.status, time.monotonic() - started))
            await asyncio.sleep(0.2)
