"""An RQ job reporting progress through tidings: ``queue.enqueue(import_rows, job_id, rows)``."""

from __future__ import annotations

import functools
import os

from tidings import SyncProgressEmitter


@functools.cache
def emitter() -> SyncProgressEmitter:
    return SyncProgressEmitter(os.environ["TIDINGS_REDIS_URL"])


def import_rows(job_id: str, rows: list[dict[str, str]]) -> int:
    with emitter().job(job_id, filename="rows.csv") as job:
        for _ in job.track(rows, step="extracting"):
            if job.is_cancel_requested():
                break
        return len(rows)
