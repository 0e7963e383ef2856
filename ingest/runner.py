"""Runs uploads' pipelines as tasks of the server, a bounded number at once.

A job waits as ``queued`` until one of ``pipeline_concurrency`` slots frees up. The runner keeps
every task it starts; closing it cancels them, waits for them, and ends each interrupted job in
``error`` so nobody watches a job that will never move again. Each stored upload is removed when
its pipeline ends, whatever the outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from tidings.errors import TidingsError
from tidings.ingest.pipeline import Parsing, Pipeline, Upload, fail_job
from tidings.ingest.registry import Registry
from tidings.worker.emitter import ProgressEmitter

__all__ = ["PipelineRunner"]

logger = logging.getLogger(__name__)


class PipelineRunner:
    def __init__(
        self,
        emitter: ProgressEmitter,
        registry: Registry,
        concurrency: int,
        parsing: Parsing | None = None,
    ) -> None:
        self.emitter = emitter
        self.registry = registry
        self.parsing = parsing or Parsing()
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: dict[asyncio.Task[None], Upload] = {}

    def submit(self, upload: Upload) -> None:
        task = asyncio.create_task(self._run(upload), name=f"pipeline {upload.job_id}")
        self._tasks[task] = upload
        task.add_done_callback(self._tasks.pop)

    @property
    def running(self) -> int:
        """Pipelines not yet finished, waiting or running."""
        return len(self._tasks)

    async def _run(self, upload: Upload) -> None:
        try:
            async with self._slots:
                await Pipeline(self.emitter, self.registry, upload, self.parsing).run()
        finally:
            with contextlib.suppress(OSError):
                upload.path.unlink(missing_ok=True)

    async def aclose(self) -> None:
        """Cancel every pipeline, wait for it, end its job as interrupted; then the emitter."""
        interrupted = list(self._tasks.items())
        for task, _ in interrupted:
            task.cancel()
        await asyncio.gather(*(task for task, _ in interrupted), return_exceptions=True)
        for task, upload in interrupted:
            if task.cancelled():
                reason = (
                    f"The server stopped before it finished {upload.filename}; "
                    "please upload it again."
                )
                await fail_job(self.emitter, upload.job_id, upload.filename, "interrupted", reason)
        if interrupted:
            logger.info("stopped %d pipelines", len(interrupted))
        with contextlib.suppress(TidingsError):  # a held update of a job that has since ended
            await self.emitter.aclose()  # sends what is held, stops the flush timers
