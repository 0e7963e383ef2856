"""An arq worker reporting progress through tidings: ``arq examples.arq_worker.WorkerSettings``."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from arq.connections import RedisSettings
from tidings import ProgressEmitter

REDIS_URL = os.environ.get("TIDINGS_REDIS_URL", "redis://127.0.0.1:6379/0")


async def startup(ctx: dict[str, Any]) -> None:
    ctx["emitter"] = ProgressEmitter.from_url(REDIS_URL)


async def shutdown(ctx: dict[str, Any]) -> None:
    await ctx["emitter"].aclose()


async def import_rows(ctx: dict[str, Any], job_id: str, rows: list[dict[str, str]]) -> int:
    emitter: ProgressEmitter = ctx["emitter"]
    async with emitter.job(job_id, filename="rows.csv") as job:
        async for _ in job.track(rows, step="extracting"):
            pass
        await job.complete({"rows": len(rows)})
    return len(rows)


class WorkerSettings:
    functions: ClassVar = [import_rows]
    on_startup = startup
    on_shutdown = shutdown
    redis_settings = RedisSettings.from_dsn(REDIS_URL)
