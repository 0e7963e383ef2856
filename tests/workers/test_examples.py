"""The README's worker examples, run for real: Celery, RQ, arq and a shell script."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from tidings import ProgressEmitter

from tests.support import ROOT, server_process

ROWS = [{"amount": "12.50"}, {"amount": ""}, {"amount": "3.00"}]


async def steps_of(redis_url: str, job_id: str) -> tuple[str, list[str]]:
    reader = ProgressEmitter.from_url(redis_url)
    try:
        job = await reader.service.snapshot(job_id)
        return job["status"], [entry["step"] for entry in job["steps"]]
    finally:
        await reader.aclose()


@pytest.fixture
def worker_env(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TIDINGS_REDIS_URL", redis_url)
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    return redis_url


async def test_celery_task(worker_env: str) -> None:
    import celery_tasks

    celery_tasks.app.conf.task_always_eager = True
    result = await asyncio.to_thread(lambda: celery_tasks.import_rows.delay("celery-1", ROWS).get())
    assert result == 2
    assert await steps_of(worker_env, "celery-1") == (
        "done",
        ["queued", "extracting", "storing", "complete"],
    )
    celery_tasks.emitter().close()


def test_rq_job(worker_env: str) -> None:
    import rq
    import rq_jobs

    # A synchronous test: RQ's worker installs signal handlers, which only the main thread may.
    with redis.Redis.from_url(worker_env) as connection:
        queue = rq.Queue("tidings", connection=connection)
        queue.enqueue(rq_jobs.import_rows, "rq-1", ROWS)
        assert rq.SimpleWorker([queue], connection=connection).work(burst=True)
    rq_jobs.emitter().close()
    assert asyncio.run(steps_of(worker_env, "rq-1")) == (
        "done",
        ["queued", "extracting", "complete"],
    )


# arq's Worker.close() still calls redis-py's deprecated close(); not ours to fix.
@pytest.mark.filterwarnings("ignore:Call to deprecated close:DeprecationWarning")
async def test_arq_worker(worker_env: str) -> None:
    import arq
    import arq_worker
    from arq.connections import RedisSettings

    settings = RedisSettings.from_dsn(worker_env)
    pool = await arq.create_pool(settings)
    await pool.enqueue_job("import_rows", "arq-1", ROWS)
    worker = arq.Worker(
        functions=[arq_worker.import_rows],
        redis_settings=settings,
        burst=True,
        on_startup=arq_worker.startup,
        on_shutdown=arq_worker.shutdown,
        handle_signals=False,
    )
    await worker.main()
    await worker.close()
    await pool.aclose()
    assert await steps_of(worker_env, "arq-1") == ("done", ["queued", "extracting", "complete"])


async def test_shell_script_over_http() -> None:
    with server_process({"TIDINGS_API_KEY": "shell-key-123"}) as node:
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "TIDINGS_API_KEY": "shell-key-123",
            "TIDINGS_PORT": str(node.port),
        }
        process = await asyncio.create_subprocess_exec(
            "bash",
            str(ROOT / "examples" / "shell_worker.sh"),
            "shell-1",
            env=env,
            stdout=subprocess.PIPE,
        )
        out, _ = await asyncio.wait_for(process.communicate(), 120)
        assert process.returncode == 0
        events = [json.loads(line) for line in out.decode().splitlines()]
        assert [e["progress"] for e in events] == [5, 20, 40, 60, 80, 100]
        assert events[-1]["status"] == "done"
        assert events[0]["message"] == "Getting ready to read backup.tar..."
