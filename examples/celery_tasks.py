"""A Celery task reporting its progress through tidings (blocking emitter, one per process)."""

from __future__ import annotations

import functools
import os

from celery import Celery
from tidings import SyncProgressEmitter

app = Celery("tidings-example", broker=os.environ.get("CELERY_BROKER_URL", "memory://"))


@functools.cache
def emitter() -> SyncProgressEmitter:
    """One emitter per worker process, made on first use (after Celery has forked)."""
    return SyncProgressEmitter(os.environ["TIDINGS_REDIS_URL"])


@app.task
def import_rows(job_id: str, rows: list[dict[str, str]], owner: str | None = None) -> int:
    with emitter().job(job_id, owner=owner, filename="rows.csv") as job:
        kept = [row for row in job.track(rows, step="extracting", end=90) if row.get("amount")]
        job.progress("storing", 95, context={"rows": len(kept)})
        job.complete({"rows": len(kept)})
    return len(kept)
