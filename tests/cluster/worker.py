"""A worker process: one job's updates at a steady rate, through ``ProgressEmitter.from_url``.

``python -m tests.cluster.worker REDIS_URL JOB COUNT --acked FILE [--interval S]``

Update ``n`` (1 to COUNT - 1) sets ``extra.row = n``, so each is an event of its own; update COUNT
completes the job. A send the store refuses (Redis is away) is tried again until it is recorded,
as a careful worker does. Every Event the emitter returned, that is every acknowledged update, is
written to FILE as a JSON line ``{"epoch", "seq", "row"}``; the last line on stdout is
``{"errors": <sends refused>}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any, TextIO

from tidings import ProgressEmitter, Settings, StoreUnavailable
from tidings.models import Event

STEP = "processing_rows"


async def _send(emitter: ProgressEmitter, job_id: str, row: int, count: int) -> Event | None:
    if row == count:
        return await emitter.complete(job_id, result={"rows": count - 1})
    return await emitter.send_progress(job_id, STEP, row * 99 // count, extra={"row": row})


async def run(args: argparse.Namespace, acked: TextIO) -> dict[str, Any]:
    # No coalescing: every update must be an event of its own.
    emitter = ProgressEmitter.from_url(args.redis_url, Settings(coalesce_window=0))
    errors = 0
    try:
        for row in range(1, args.count + 1):
            while True:
                try:
                    event = await _send(emitter, args.job, row, args.count)
                    break
                except StoreUnavailable:
                    errors += 1
                    await asyncio.sleep(0.05)
            if event is not None:
                line = {"epoch": event["epoch"], "seq": event["seq"], "row": row}
                acked.write(json.dumps(line) + "\n")
                acked.flush()
            await asyncio.sleep(args.interval)
    finally:
        await emitter.aclose()
    return {"errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("redis_url")
    parser.add_argument("job")
    parser.add_argument("count", type=int)
    parser.add_argument("--interval", type=float, default=0.002)
    parser.add_argument("--acked", required=True)
    args = parser.parse_args()
    with open(args.acked, "w") as acked:
        summary = asyncio.run(run(args, acked))
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
