"""Redis crashes (SIGKILL) and comes back mid-job.

Workers retry until their updates are recorded; every update acknowledged before the crash is
still there after it; the nodes subscribe again; every client ends with every event exactly
once, in order. The control arm runs the same against a Redis that keeps nothing on disk and
shows that the acknowledgement check does catch a loss.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.cluster.conftest import running_nodes
from tests.cluster.parts import RoamingWatcher, Worker, readyz, until
from tests.support import RedisServer, eventually, http_json

UPDATES = 800  # within the history a node keeps (1000), so the whole of it can be read back
JOB = "redis-crash"
#: Every write on disk before Redis answers: a crash loses nothing it acknowledged.
DURABLE = ("--appendonly", "yes", "--appendfsync", "always")


@dataclass
class Outcome:
    acked: list[dict[str, Any]]
    history: list[dict[str, Any]]
    watchers: list[RoamingWatcher]
    worker_errors: int


async def through_a_redis_crash(tmp_path: Path, *options: str) -> Outcome:
    async with contextlib.AsyncExitStack() as stack:
        redis = RedisServer(tmp_path, *options)
        stack.callback(redis.stop)
        redis.start()
        env = {"TIDINGS_REDIS_URL": redis.url}
        nodes = await stack.enter_async_context(running_nodes(tmp_path, env, env))
        a, b = nodes
        watchers = []
        for urls in ([a.url, b.url], [b.url, a.url]):
            watchers.append(await RoamingWatcher(urls).connect())
            stack.push_async_callback(watchers[-1].close)
        for watcher in watchers:
            await watcher.subscribe(JOB)
        worker = Worker(redis.url, JOB, UPDATES, tmp_path / "acked", 0.002)
        stack.push_async_callback(worker.stop)
        await worker.start()
        await eventually(lambda: len(watchers[0].applied) >= UPDATES // 4, what="a quarter")

        redis.crash()
        for node in nodes:
            await until(lambda n=node: _status_is(n.url, 503), what=f"{node.url} not ready")
        redis.start()

        summary = await worker.finish()
        for node in nodes:
            await until(lambda n=node: _status_is(n.url, 200), what=f"{node.url} ready again")
        status, job = await http_json("GET", f"{a.url}/api/jobs/{JOB}")
        assert status == 200 and job["status"] == "done"
        status, read = await http_json(
            "GET", f"{a.url}/api/jobs/{JOB}/events?epoch={job['epoch']}&since=0"
        )
        assert status == 200 and read["recovered"]
        for watcher in watchers:
            await eventually(
                lambda w=watcher: w.last.get(JOB) == (job["epoch"], job["seq"]),
                what=f"{watcher.url} up to date",
            )
    return Outcome(worker.acked(), read["events"], watchers, summary["errors"])


def acknowledged_but_lost(outcome: Outcome) -> list[dict[str, Any]]:
    """Acknowledged updates that the final history does not hold as they were acknowledged."""
    held = {(e["epoch"], e["seq"]): e["extra"].get("row") for e in outcome.history}
    return [
        ack
        for ack in outcome.acked
        if ack["row"] < UPDATES and held.get((ack["epoch"], ack["seq"])) != ack["row"]
    ]


async def test_a_redis_crash_loses_nothing_acknowledged_and_clients_end_consistent(
    tmp_path: Path,
) -> None:
    outcome = await through_a_redis_crash(tmp_path, *DURABLE)

    assert acknowledged_but_lost(outcome) == []
    # Every update exactly once: none lost, none doubled by a retry whose first try had landed.
    assert [e["seq"] for e in outcome.history] == list(range(1, UPDATES + 1))
    assert [e["extra"]["row"] for e in outcome.history[:-1]] == list(range(1, UPDATES))
    assert len({ack["epoch"] for ack in outcome.acked}) == 1
    for watcher in outcome.watchers:
        assert watcher.seqs(JOB) == list(range(1, UPDATES + 1))
        # Its node closed the connection after subscribing again, so the client caught up.
        assert watcher.reconnects >= 1
    print(
        f"worker sends refused after the emitter's retries: {outcome.worker_errors}; "
        f"reconnects: {[w.reconnects for w in outcome.watchers]}"
    )


async def test_the_check_catches_acknowledged_updates_lost_by_a_redis_that_keeps_nothing(
    tmp_path: Path,
) -> None:
    outcome = await through_a_redis_crash(tmp_path)  # no appendonly file, no snapshots

    lost = acknowledged_but_lost(outcome)
    assert lost
    assert len({ack["epoch"] for ack in outcome.acked}) == 2  # the job began again
    print(f"acknowledged then lost without persistence: {len(lost)} of {len(outcome.acked)}")


async def _status_is(url: str, status: int) -> bool:
    return await readyz(url) == status
