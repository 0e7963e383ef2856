"""The blocking twin of ProgressEmitter, for Celery, RQ, dramatiq and plain scripts.

It owns an event loop in a daemon thread; every method may be called from any thread and
blocks until its update is recorded. Progress-only updates are coalesced in the caller's own
thread, so a tight loop costs a lock and a dict update per call, not a thread hop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterable, Iterator, Mapping
from concurrent.futures import Future
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from tidings.wire import Event, Snapshot
from tidings.worker.emitter import (
    JobHandle,
    Meter,
    ProgressEmitter,
    complete_call,
    fail_call,
    progress_call,
)

if TYPE_CHECKING:
    from tidings.settings import Settings

T = TypeVar("T")


class SyncProgressEmitter:
    def __init__(self, redis_url: str, settings: Settings | None = None) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tidings-emitter", daemon=True
        )
        self._thread.start()
        self._emitter: ProgressEmitter = self._run(self._open(redis_url, settings))

    @staticmethod
    async def _open(redis_url: str, settings: Settings | None) -> ProgressEmitter:
        return ProgressEmitter.from_url(redis_url, settings)

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self._thread:
            raise RuntimeError("SyncProgressEmitter cannot be called from its own loop")
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return future.result()

    def send_progress(
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
        return self.emit_request(
            job_id, progress_call(step, progress, context, extra, owner, message)
        )

    def emit_request(self, job_id: str, payload: Mapping[str, object]) -> Event | None:
        decision = self._emitter.decide(job_id, payload)
        if decision.flush_at is not None:
            self._loop.call_soon_threadsafe(self._emitter.schedule_flush, job_id, decision.flush_at)
        if not decision.send:
            return None
        return self._run(self._emitter.send_decided(job_id, decision.send))

    def complete(
        self,
        job_id: str,
        result: Any = None,
        *,
        message: str | None = None,
        extra: Mapping[str, object] | None = None,
        context: Mapping[str, object] | None = None,
    ) -> Event | None:
        return self.emit_request(job_id, complete_call(result, message, extra, context))

    def fail(
        self,
        job_id: str,
        error: str,
        *,
        code: str = "failed",
        message: str | None = None,
        context: Mapping[str, object] | None = None,
    ) -> Event | None:
        return self.emit_request(job_id, fail_call(error, code, message, context))

    def cancel(self, job_id: str) -> Snapshot:
        return self._run(self._emitter.cancel(job_id))

    def is_cancel_requested(self, job_id: str) -> bool:
        return self._run(self._emitter.is_cancel_requested(job_id))

    def job(
        self,
        job_id: str | None = None,
        *,
        owner: str | None = None,
        filename: str | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> SyncJob:
        return SyncJob(self, self._emitter.job(job_id, owner=owner, filename=filename, extra=extra))

    def close(self) -> None:
        """Send what is held, close the connections and stop the loop thread."""
        if not self._loop.is_running():
            return
        try:
            self._run(self._emitter.aclose())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()

    def __enter__(self) -> SyncProgressEmitter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SyncJob:
    """``with emitter.job(...) as job``: the blocking form of ``JobHandle``."""

    def __init__(self, emitter: SyncProgressEmitter, handle: JobHandle) -> None:
        self.emitter = emitter
        self._handle = handle

    @property
    def job_id(self) -> str:
        return self._handle.job_id

    def __enter__(self) -> SyncJob:
        self.emitter._run(self._handle.__aenter__())
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        return self.emitter._run(self._handle.__aexit__(kind, exc, tb))

    def progress(self, step: str, progress: float | None = None, **fields: Any) -> Event | None:
        fields = self._handle.with_filename(fields)
        return self.emitter.send_progress(self.job_id, step, progress, **fields)

    def complete(self, result: Any = None, **fields: Any) -> Event | None:
        return self.emitter.complete(self.job_id, result, **self._handle.with_filename(fields))

    def is_cancel_requested(self) -> bool:
        return self.emitter.is_cancel_requested(self.job_id)

    def track(
        self,
        items: Iterable[T],
        *,
        step: str,
        total: int | None = None,
        start: float = 0.0,
        end: float = 100.0,
    ) -> Iterator[T]:
        """Wrap a loop like tqdm: each item moves progress from ``start`` towards ``end``."""
        meter = Meter(items, total, start, end)
        self.progress(step, start if meter.total else None)
        for item in items:
            yield item
            self.emitter.emit_request(self.job_id, self._handle.with_filename(meter.advance(step)))
