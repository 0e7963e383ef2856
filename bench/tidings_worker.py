"""The tidings side's worker: ``ProgressEmitter.from_url`` in a process of its own.

The pacing is the one of ``bench/peer/worker.mjs``: ``--rate U`` updates/s in total over
``--jobs`` jobs round-robin (0: as fast as ``--concurrency`` in-flight updates allow) for
``--duration`` s. Coalescing is off, so that every update is one merge and one publish, as on the
peer. It first sends one update per job (the jobs exist before anyone subscribes) and prints
``{"primed": true}``, waits for a line on stdin, prints ``{"started": true}``, paces, and prints
``{"updates", "seconds"}``.

    python bench/tidings_worker.py --redis redis://127.0.0.1:6390/0 --jobs 100 --rate 1000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tidings import ProgressEmitter, Settings

logger = logging.getLogger(__name__)


def updater(emitter: ProgressEmitter, jobs: int, prefix: str, t0: float) -> Callable[[int], Any]:
    """Update number ``index``: job ``index % jobs``, the send time in ``extra.sent``."""

    async def update(index: int) -> None:
        await emitter.send_progress(
            f"{prefix}{index % jobs}",
            "extracting",
            (index // jobs) % 100,
            context={"filename": "expenses.csv"},
            extra={"sent": time.time() - t0},
        )

    return update


async def pace(
    update: Callable[[int], Awaitable[None]], rate: float, duration: float, concurrency: int
) -> dict[str, float]:
    """``rate`` updates/s (0: as many as ``concurrency`` in flight allow) for ``duration`` s."""
    sent = 0
    inflight: set[asyncio.Task[None]] = set()
    wake = asyncio.Event()

    async def one(index: int) -> None:
        await update(index)

    def finished(task: asyncio.Task[None]) -> None:
        inflight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("update failed: %r", task.exception())
        wake.set()

    start = time.perf_counter()
    end = start + duration
    while (now := time.perf_counter()) < end:
        target = rate * (now - start) if rate > 0 else float("inf")
        while sent < target and len(inflight) < concurrency:
            task = asyncio.create_task(one(sent))
            inflight.add(task)
            task.add_done_callback(finished)
            sent += 1
        wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), 0.001 if rate > 0 else 0.05)
    if inflight:
        await asyncio.wait(set(inflight))
    return {"updates": sent, "seconds": time.perf_counter() - start}


async def run(args: argparse.Namespace) -> dict[str, float]:
    async with ProgressEmitter.from_url(args.redis, Settings(coalesce_window=0)) as emitter:
        update = updater(emitter, args.jobs, args.prefix, args.t0)
        await asyncio.gather(*(update(index) for index in range(args.jobs)))
        print(json.dumps({"primed": True}), flush=True)
        if not await asyncio.to_thread(sys.stdin.readline):
            return {"updates": 0, "seconds": 0.0}
        print(json.dumps({"started": True}), flush=True)
        return await pace(update, args.rate, args.duration, args.concurrency)


def run_loop(main: Awaitable[Any]) -> Any:
    """``asyncio.run`` on uvloop where it is installed (as ``tidings serve`` runs)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)  # type: ignore[arg-type]
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--prefix", default="bench-")
    parser.add_argument("--rate", type=float, default=0)
    parser.add_argument("--duration", type=float, default=5)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--t0", type=float, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    print(json.dumps(run_loop(run(args))), flush=True)


if __name__ == "__main__":
    main()
