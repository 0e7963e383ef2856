"""The worker's API: report progress from the server process or from any other process."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

from aiohttp import web

from messages import MessageWriter

from .appkeys import SERVICE
from .cluster import RedisManager
from .errors import Conflict, JobCancelled, JobTerminal
from .models import CreateJobRequest, Event, JobRequest, ProgressRequest, Snapshot, parse
from .service import JobService
from .settings import Settings
from .store import Limits, RedisStore, connect


class ProgressEmitter:
    """Sends a job's progress; every argument is validated as the HTTP API validates it."""

    def __init__(
        self, service: JobService, *, closers: Sequence[Callable[[], Awaitable[None]]] = ()
    ) -> None:
        self.service = service
        self._closers = list(closers)

    @classmethod
    def from_url(cls, redis_url: str, settings: Settings | None = None) -> ProgressEmitter:
        """An emitter for a process outside the server, sharing the nodes' Redis."""
        settings = settings or Settings()
        client = connect(redis_url)
        store = RedisStore(
            client,
            Limits(
                history=settings.history_limit,
                active_ttl=settings.idle_ttl,
                done_ttl=settings.done_ttl,
                max_extra_bytes=settings.max_extra_bytes,
            ),
        )
        manager = RedisManager(redis_url, write_only=True)
        writer = MessageWriter(llm=None, redis=client)
        service = JobService(store, manager, writer)
        return cls(service, closers=[writer.aclose, store.aclose, manager.aclose])

    @classmethod
    def for_app(cls, app: web.Application) -> ProgressEmitter:
        """The in-process emitter of a running server (its pipeline uses this)."""
        return cls(app[SERVICE])

    async def send_progress(
        self,
        job_id: str,
        step: str,
        progress: float | None = None,
        *,
        context: Mapping[str, object] | None = None,
        extra: Mapping[str, object] | None = None,
        owner: str | None = None,
        message: str | None = None,
    ) -> Event | None:
        """Report a step; the Event it produced, or None when nothing visible changed."""
        return await self._report(
            job_id,
            step=step,
            progress=progress,
            context=context,
            extra=extra,
            owner=owner,
            message=message,
        )

    async def complete(
        self,
        job_id: str,
        result: Any = None,
        *,
        message: str | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> Event | None:
        return await self._report(
            job_id, step="complete", status="done", result=result, message=message, extra=extra
        )

    async def fail(
        self, job_id: str, error: str, *, code: str = "failed", message: str | None = None
    ) -> Event | None:
        """End the job in the step it was in, with a sentence saying what went wrong."""
        return await self._report(
            job_id, status="error", error={"code": code, "message": error}, message=message
        )

    async def cancel(self, job_id: str) -> Snapshot:
        return await self.service.cancel(job_id)

    async def is_cancel_requested(self, job_id: str) -> bool:
        return await self.service.is_cancel_requested(job_id)

    def job(
        self,
        job_id: str | None = None,
        *,
        owner: str | None = None,
        filename: str | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> JobHandle:
        """``async with emitter.job(...) as job``: created on entry, completed or failed on exit."""
        request = parse(
            CreateJobRequest,
            {
                "job_id": job_id,
                "owner": owner,
                "filename": filename,
                "extra": dict(extra) if extra else None,
            },
        )
        return JobHandle(self, request)

    async def emit_request(self, job_id: str, payload: Mapping[str, object]) -> Event | None:
        """Report an update in the JSON shape of ``POST /api/jobs/{id}/progress``."""
        request = parse(ProgressRequest, dict(payload))
        return await self.service.report(parse(JobRequest, {"job_id": job_id}).job_id, request)

    async def _report(self, job_id: str, **fields: Any) -> Event | None:
        payload = {key: value for key, value in fields.items() if value is not None}
        for key in ("context", "extra"):
            if key in payload:
                payload[key] = dict(payload[key])
        return await self.emit_request(job_id, payload)

    async def aclose(self) -> None:
        """Close what ``from_url`` opened; the in-process emitter leaves the server's alone."""
        closers, self._closers = self._closers, []
        for close in closers:
            await close()

    async def __aenter__(self) -> ProgressEmitter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class JobHandle:
    """One job seen from its worker; a user's cancel ends the ``async with`` block quietly."""

    def __init__(self, emitter: ProgressEmitter, request: CreateJobRequest) -> None:
        self.emitter = emitter
        self._request = request
        self.job_id = request.job_id or ""

    async def __aenter__(self) -> JobHandle:
        try:
            job = await self.emitter.service.create(self._request, self._request.owner)
            self.job_id = job["job_id"]
        except Conflict:
            if not self._request.job_id:
                raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if exc is None:
            with contextlib.suppress(JobTerminal):  # the block may have finished the job itself
                await self.emitter.complete(self.job_id)
            return False
        if isinstance(exc, JobCancelled):
            return True
        if isinstance(exc, Exception) and not isinstance(exc, JobTerminal):
            await self.emitter.fail(self.job_id, str(exc) or type(exc).__name__)
        return False

    async def progress(
        self, step: str, progress: float | None = None, **fields: Any
    ) -> Event | None:
        return await self.emitter.send_progress(self.job_id, step, progress, **fields)

    async def complete(self, result: Any = None, **fields: Any) -> Event | None:
        return await self.emitter.complete(self.job_id, result, **fields)

    async def is_cancel_requested(self) -> bool:
        return await self.emitter.is_cancel_requested(self.job_id)
