"""A worker process: COUNT updates to each of JOBS jobs, round-robin, at a steady rate.

``python -m tests.chaos.steady_worker REDIS_URL --prefix P --jobs J --updates N --rate R [--pad B]``

Update ``n`` of a job (1 to N - 1) sets ``extra = {"row": n, "sent": <wall clock>, "pad": ...}``
so each is an event of its own and carries its send time (latency = arrival - sent); update N
completes the job. A send that raises ``StoreUnavailable`` (the emitter's own retries ran out) is
sent again with the *same* payload: the protocol makes that harmless ("sending the same update
twice ... the second one changes nothing"; "a retry never doubles an event").

Prints ``created`` once every job has its first event, then on exit ``{"errors": <sends refused
after the emitter's retries>, "longest_send": <seconds>}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from tidings import ProgressEmitter, Settings, StoreUnavailable

STEP = "processing_rows"


async def _send(emitter: ProgressEmitter, job_id: str, row: int, args: argparse.Namespace) -> None:
    if row == args.updates:
        await emitter.complete(job_id, result={"rows": row - 1})
        return
    extra: dict[str, Any] = {"row": row, "sent": time.time()}
    if args.pad:
        extra["pad"] = "x" * args.pad
    progress = row * 99 // args.updates
    await emitter.send_progress(job_id, STEP, progress, extra=extra)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    emitter = ProgressEmitter.from_url(args.redis_url, Settings(coalesce_window=0))
    jobs = [f"{args.prefix}{index}" for index in range(args.jobs)]
    errors = 0
    longest = 0.0
    period = 1.0 / args.rate
    next_at = time.monotonic()
    try:
        for row in range(1, args.updates + 1):
            for job_id in jobs:
                started = time.monotonic()
                while True:
                    try:
                        await _send(emitter, job_id, row, args)
                        break
                    except StoreUnavailable:
                        errors += 1
                        await asyncio.sleep(0.1)
                longest = max(longest, time.monotonic() - started)
                next_at = max(next_at + period, time.monotonic() - 1.0)
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if row == 1:
                print("created", flush=True)
    finally:
        await emitter.aclose()
    return {"errors": errors, "longest_send": round(longest, 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("redis_url")
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--jobs", type=int, required=True)
    parser.add_argument("--updates", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True, help="updates a second, all jobs")
    parser.add_argument("--pad", type=int, default=0, help="bytes of padding in each update")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
