"""Two nodes, one Redis: what a worker or either node emits reaches every node's clients."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.cluster.parts import Worker, collect_stream, post_progress, readyz
from tests.support import ServerProcess, Watcher, eventually, http_json


async def test_an_update_by_a_worker_or_through_node_a_reaches_clients_on_both_nodes(
    nodes: tuple[ServerProcess, ...], redis_url: str, tmp_path: Path
) -> None:
    a, b = nodes
    worker = Worker(redis_url, "by-worker", 20, tmp_path / "acked", 0.002)
    watchers = [await Watcher(a.url).connect(), await Watcher(b.url).connect()]
    try:
        for watcher in watchers:
            for job_id in ("by-worker", "by-http"):
                await watcher.subscribe(job_id)
        await worker.start()
        for progress in (10, 50, 90):
            await post_progress(a.url, "by-http", progress)
        await post_progress(a.url, "by-http", None, step="complete", status="done")
        await worker.finish()
        for watcher in watchers:
            await eventually(
                lambda w=watcher: len(w.applied) == 24, what=f"every event on {watcher.url}"
            )
            assert watcher.seqs("by-worker") == list(range(1, 21))
            assert watcher.seqs("by-http") == [1, 2, 3, 4]
            assert watcher.resubscribes == 0  # all of it live, none of it caught up
            assert watcher.jobs["by-worker"]["status"] == "done"
            assert watcher.jobs["by-http"]["status"] == "done"
    finally:
        await worker.stop()
        for watcher in watchers:
            await watcher.close()


async def test_a_node_with_only_sse_clients_hears_the_other_node(
    nodes: tuple[ServerProcess, ...],
) -> None:
    """No Socket.IO client ever connects to node B; its SSE stream still gets A's events live."""
    a, b = nodes
    assert await readyz(b.url) == 200
    status, _ = await http_json("POST", f"{a.url}/api/jobs", {"job_id": "sse-b"})
    assert status == 201
    received: list[tuple[str, dict[str, Any]]] = []
    stream = asyncio.create_task(collect_stream(f"{b.url}/api/jobs/sse-b/stream", received))
    try:
        await eventually(lambda: len(received) == 1, what="the snapshot")
        for progress in (20, 60):
            await post_progress(a.url, "sse-b", progress)
        await post_progress(a.url, "sse-b", None, step="complete", status="done")
        async with asyncio.timeout(15):
            await stream  # the stream ends after the terminal event
    finally:
        stream.cancel()
    assert [(name, data["seq"]) for name, data in received] == [
        ("snapshot", 1),
        ("job_update", 2),
        ("job_update", 3),
        ("job_complete", 4),
    ]
