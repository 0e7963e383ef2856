"""A worker process: one job's updates at a steady rate, through ``ProgressEmitter.from_url``.

``python -m tests.cluster.worker REDIS_URL JOB COUNT --acked FILE [--interval S] [--owner O]``

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


async def _send(args: argparse.Namespace, emitter: ProgressEmitter, row: int) -> Event | None:
    if row == args.count:
        return await emitter.complete(args.job, result={"rows": args.count - 1})
    progress = row * 99 // args.count
    return await emitter.send_progress(
        args.job, STEP, progress, extra={"row": row}, owner=args.owner
    )


async def run(args: argparse.Namespace, acked: TextIO) -> dict[str, Any]:
    # No coalescing: every update must be an event of its own.
    emitter = ProgressEmitter.from_url(args.redis_url, Settings(coalesce_window=0))
    errors = 0
    try:
        for row in range(1, args.count + 1):
            while True:
                try:
                    event = await _send(args, emitter, row)
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
    parser.add_argument("--owner")
    args = parser.parse_args()
    with open(args.acked, "w") as acked:
        summary = asyncio.run(run(args, acked))
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
