"""A node dies (SIGKILL) mid-job: its clients reconnect to the other node and miss nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.cluster.parts import RoamingWatcher, Worker, seq_on, until
from tests.support import ServerProcess, eventually

UPDATES = 2000
#: Events the worker emits while the clients are away, before they reconnect.
MISSED_AT_LEAST = 50


async def test_a_client_whose_node_is_killed_reconnects_and_applies_every_event_once_in_order(
    nodes: tuple[ServerProcess, ...], redis_url: str, tmp_path: Path
) -> None:
    a, b = nodes
    job_id = "node-kill"
    resume = asyncio.Event()
    client = await RoamingWatcher([a.url, b.url], resume=resume).connect()
    control = await RoamingWatcher([a.url, b.url], catch_up=False, resume=resume).connect()
    worker = await Worker(redis_url, job_id, UPDATES, tmp_path / "acked", 0.002).start()
    try:
        for watcher in (client, control):
            await watcher.subscribe(job_id)
        await eventually(lambda: len(client.applied) >= UPDATES // 4, what="a quarter applied")

        a.kill()
        await eventually(lambda: client.disconnects and control.disconnects, what="both cut off")
        away_at = max(client.seqs(job_id)[-1], control.seqs(job_id)[-1])
        await until(
            lambda: _past(b.url, job_id, away_at + MISSED_AT_LEAST), what="events while away"
        )
        resume.set()

        await worker.finish()
        await eventually(
            lambda: (
                client.seqs(job_id)[-1:] == [UPDATES] and control.seqs(job_id)[-1:] == [UPDATES]
            ),
            what="the last event",
        )
    finally:
        await worker.stop()
        await client.close()
        await control.close()

    assert client.reconnects == control.reconnects == 1
    assert client.url == control.url == b.url
    assert client.seqs(job_id) == list(range(1, UPDATES + 1))
    assert client.jobs[job_id]["status"] == "done"
    # The control reconnected the same way but without epoch/since: a hole, where the other
    # client's catch-up filled it.
    missed = sorted(set(range(1, UPDATES + 1)) - set(control.seqs(job_id)))
    assert len(missed) >= MISSED_AT_LEAST
    assert missed == list(range(missed[0], missed[-1] + 1))  # one hole, while it was away
    assert control.seqs(job_id) == sorted(set(control.seqs(job_id)))
    print(f"control client lost {len(missed)} of {UPDATES} events (seq {missed[0]}..{missed[-1]})")


async def _past(url: str, job_id: str, seq: int) -> bool:
    return await seq_on(url, job_id) >= seq
