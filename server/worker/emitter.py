"""The worker's API: report progress from the server process or from any other process."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryError,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)
from tidings.constants import TERMINAL_STATUSES
from tidings.errors import Conflict, JobCancelled, JobTerminal, StoreUnavailable
from tidings.service import JobService
from tidings.store.base import limits_of
from tidings.wire import Event, Snapshot
from tidings.worker.checks import CallChecks
from tidings.worker.coalesce import Call, Coalescer

if TYPE_CHECKING:
    from aiohttp import web
    from tidings.models import CreateJobRequest, ProgressRequest
    from tidings.settings import Settings

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: A worker that cannot reach the store tries at least this often and for this long, then raises:
#: long enough to ride out a Redis restart or a Redis Cluster failover (docs/cluster.md).
SEND_ATTEMPTS = 5
SEND_WITHIN_SECONDS = 10.0
#: Seconds before the first retry (the backoff's first wait; later ones grow from there).
FIRST_RETRY_DELAY = 0.1


class Decided(NamedTuple):
    """``send`` these validated updates now, in order; when ``flush_at`` is set, schedule a
    flush of what is held then."""

    send: list[ProgressRequest]
    flush_at: float | None


@functools.lru_cache(maxsize=4096)
def _check_job_id(job_id: str) -> None:
    """Raise InvalidRequest for a bad job id; a worker sends many updates per job, so each id
    is validated once (an id that fails is not remembered, and fails every time)."""
    from tidings.models import JobRequest, parse

    parse(JobRequest, {"job_id": job_id})


@functools.cache
def _request_parser() -> Callable[[object], ProgressRequest]:
    """``parse(ProgressRequest, ...)``: pydantic is loaded on the first update, not on import,
    and once: an import statement in a function costs every call half a microsecond."""
    from tidings.models import ProgressRequest, parser

    return parser(ProgressRequest)


def _validated(call: Call) -> ProgressRequest:
    """An update validated as the HTTP API validates it."""
    return _request_parser()(call)


class ProgressEmitter:
    """Sends a job's progress; every argument is validated as the HTTP API validates it.

    Progress-only updates within ``coalesce_window`` seconds collapse into the latest (see
    ``tidings.worker.coalesce``); a send that cannot reach the store is retried with backoff and
    then raises ``StoreUnavailable`` (updates are idempotent, so a retry never doubles an event).
    """

    def __init__(
        self,
        service: JobService,
        *,
        coalesce_window: float = 0.1,
        closers: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        self.service = service
        self._closers = list(closers)
        self._coalescer = Coalescer(coalesce_window)
        self._checks = CallChecks(service.store.limits.max_extra_bytes)
        #: The jobs whose sends are on their way, each with the sends waiting their turn (None
        #: until one waits): one job's updates go one at a time, in the order they were decided.
        self._turns: dict[str, deque[asyncio.Future[None]] | None] = {}
        self._flushes: set[asyncio.Task[None]] = set()

    @classmethod
    def from_url(cls, redis_url: str, settings: Settings | None = None) -> ProgressEmitter:
        """An emitter for a process outside the server, sharing the nodes' Redis: one Redis or
        any node of a Redis Cluster, which it asks once, blocking, which of the two it is."""
        # Imported here, where the connection is made: importing the worker API loads neither
        # redis nor pydantic-settings (tests/server/test_public_api.py pins it).
        from tidings.messages import MessageWriter
        from tidings.settings import Settings
        from tidings.store.redis_store import RedisStore, connect

        settings = settings or Settings()
        client = connect(redis_url)
        store = RedisStore(client, limits_of(settings))
        writer = MessageWriter(llm=None, redis=client)
        return cls(
            JobService(store, None, writer),  # its merge script publishes every event
            coalesce_window=settings.coalesce_window,
            closers=[writer.aclose, store.aclose],
        )

    @classmethod
    def for_app(cls, app: web.Application) -> ProgressEmitter:
        """The in-process emitter of a running server (its pipeline uses this)."""
        from tidings.web.keys import SERVICE, SETTINGS  # a worker never loads the web layer

        return cls(app[SERVICE], coalesce_window=app[SETTINGS].coalesce_window)

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
        """Report a step: the Event it produced, or None when nothing visible changed or the
        update was held to be sent with a later one."""
        # The call is made and decided in one expression, so that no local keeps it meanwhile.
        send = self._decided(job_id, progress_call(step, progress, context, extra, owner, message))
        return await self.send_decided(job_id, send)

    async def complete(
        self,
        job_id: str,
        result: Any = None,
        *,
        message: str | None = None,
        extra: Mapping[str, object] | None = None,
        context: Mapping[str, object] | None = None,
    ) -> Event | None:
        return await self.emit_request(job_id, complete_call(result, message, extra, context))

    async def fail(
        self,
        job_id: str,
        error: str,
        *,
        code: str = "failed",
        message: str | None = None,
        context: Mapping[str, object] | None = None,
    ) -> Event | None:
        """End the job in the step it was in, with a sentence saying what went wrong."""
        return await self.emit_request(job_id, fail_call(error, code, message, context))

    async def emit_request(self, job_id: str, payload: Mapping[str, object]) -> Event | None:
        """Report an update in the JSON shape of ``POST /api/jobs/{id}/progress``."""
        return await self.send_decided(job_id, self._decided(job_id, payload))

    def _decided(self, job_id: str, payload: Mapping[str, object]) -> list[ProgressRequest]:
        """What to send now, a flush scheduled for what is held. Not a coroutine, so that the
        call (its dicts) is not kept while the update is on its way: every object an update
        in flight keeps is one more for the garbage collector to go through, again and again."""
        decided = self.decide(job_id, payload)
        if decided.flush_at is not None:
            self.schedule_flush(job_id, decided.flush_at)
        return decided.send

    def decide(self, job_id: str, payload: Mapping[str, object]) -> Decided:
        """Validate an update and decide whether it goes now or is held (any thread).

        Everything that can be checked without the store is checked here (``checks.py``), so a
        bad argument raises at the call, never later from a flush or ``close()``. An update that
        goes as it was given is validated once, here; one merged with held updates is validated
        again as merged.
        """
        _check_job_id(job_id)
        call = dict(payload)
        if call.get("error") is not None and call.get("status") is None:
            # What the store makes of it: the job ends. Said here, the coalescer never holds it
            # and the checks and the job's turn know the job has ended.
            call["status"] = "error"
        request = _validated(call)
        hold = self._checks.check(job_id, call)
        decision = self._coalescer.offer(job_id, call, hold=hold)
        send = [request if sent is call else _validated(sent) for sent in decision.send]
        return Decided(send, decision.flush_at)

    async def send_decided(self, job_id: str, requests: list[ProgressRequest]) -> Event | None:
        """Send decided updates in order, after the job's sends decided before them and before
        any decided after (held and released updates too, so nothing overtakes a retry)."""
        if job_id in self._turns:
            await self._wait_turn(job_id)
        else:
            self._turns[job_id] = None  # the job's turn, free: taken without a wait
        event = None
        ended = False
        try:
            # By index: an iterator over the list would be one more object kept while the update
            # is on its way, and every such object is one more for the garbage collector.
            for index in range(len(requests)):
                request = requests[index]
                ended = request.status in TERMINAL_STATUSES
                try:  # the first try goes straight out: no retry machinery, no more coroutines
                    event = await self.service.report(job_id, request)
                except StoreUnavailable:
                    event = await self._retried(
                        functools.partial(self._report_again, job_id, request)
                    )
                self._checks.accepted(job_id, request.owner)
        except JobTerminal:
            ended = True
            raise
        finally:
            self._pass_turn(job_id)
            if ended:
                self._coalescer.forget(job_id)
        return event

    async def _wait_turn(self, job_id: str) -> None:
        """Wait for the job's sends decided before this one (first come, first served).

        A per-job ``asyncio.Lock`` did this, at the cost of a Lock per job and three coroutines
        per update; a free turn is taken with neither (``send_decided``), only a wait makes one.
        """
        waiting = self._turns[job_id]
        if waiting is None:
            waiting = self._turns[job_id] = deque()
        turn = asyncio.get_running_loop().create_future()
        waiting.append(turn)
        try:
            await turn
        except asyncio.CancelledError:
            if not turn.cancelled():  # handed the turn just as it was cancelled: hand it on
                self._pass_turn(job_id)
            raise

    def _pass_turn(self, job_id: str) -> None:
        """Hand the job's turn to the first send still waiting for it, or free it."""
        waiting = self._turns[job_id]
        while waiting:
            turn = waiting.popleft()
            if not turn.done():  # else it was cancelled while it waited
                turn.set_result(None)
                return
        del self._turns[job_id]

    def schedule_flush(self, job_id: str, at: float) -> None:
        """Send what is held for a job when its window ends (on the emitter's loop)."""
        task = asyncio.get_running_loop().create_task(self._flush_at(job_id, at))
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _flush_at(self, job_id: str, at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        held = self._coalescer.release(job_id)
        if held is not None:
            try:
                await self.send_decided(job_id, [_validated(held)])
            except JobTerminal as exc:
                logger.info("a held update of %s was dropped: %s", job_id, exc.message)
            except Exception:
                logger.exception("a held update of %s could not be sent", job_id)

    async def _report_again(self, job_id: str, request: ProgressRequest) -> Event | None:
        """A retry: an earlier try failed, and the store may hold this update already."""
        try:
            event = await self.service.report(job_id, request)
        except JobTerminal:
            if request.status in TERMINAL_STATUSES:
                # Most likely our own ending, stored (and delivered) before its reply was lost.
                return await self.service.latest_event(job_id)
            raise
        if event is None:
            # Stored, and delivered, by the failed try (a retry changes nothing).
            return await self.service.latest_event(job_id)
        return event

    async def _retrying(self, attempt: Callable[[], Awaitable[T]]) -> T:
        # The first try goes straight out: the retry machinery costs a worker about a quarter of
        # its CPU per update, and is needed only once the store has failed to answer.
        try:
            return await attempt()
        except StoreUnavailable:
            pass
        return await self._retried(attempt)

    async def _retried(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """``attempt`` again, with backoff, after a first try the store did not answer."""
        await asyncio.sleep(FIRST_RETRY_DELAY)
        try:
            async for trial in AsyncRetrying(
                stop=stop_after_attempt(SEND_ATTEMPTS - 1) & stop_after_delay(SEND_WITHIN_SECONDS),
                wait=wait_exponential_jitter(multiplier=0.1, max=2.0, jitter=0.1),
                retry=retry_if_exception_type(StoreUnavailable),
                reraise=False,
            ):
                with trial:
                    return await attempt()
        except RetryError as exc:
            raise StoreUnavailable(
                f"The job store did not answer after {exc.last_attempt.attempt_number + 1} tries; "
                "the update was not recorded."
            ) from exc.last_attempt.exception()
        raise AssertionError("unreachable")  # pragma: no cover

    async def flush(self) -> None:
        """Send every held update now."""
        for job_id, held in self._coalescer.release_all().items():
            await self.send_decided(job_id, [_validated(held)])

    async def cancel(self, job_id: str) -> Snapshot:
        return await self._retrying(lambda: self.service.cancel(job_id))

    async def is_cancel_requested(self, job_id: str) -> bool:
        return await self._retrying(lambda: self.service.is_cancel_requested(job_id))

    def job(
        self,
        job_id: str | None = None,
        *,
        owner: str | None = None,
        filename: str | None = None,
        extra: Mapping[str, object] | None = None,
    ) -> JobHandle:
        """``async with emitter.job(...) as job``: created on entry, completed or failed on exit."""
        from tidings.models import CreateJobRequest, parse

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

    async def aclose(self) -> None:
        """Send what is held, stop the flush timers, close what ``from_url`` opened."""
        try:
            await self.flush()
        finally:
            for task in list(self._flushes):
                task.cancel()
            await asyncio.gather(*self._flushes, return_exceptions=True)
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
            self.emitter._checks.accepted(self.job_id, self._request.owner)
        except Conflict:
            if not self._request.job_id:
                raise
        return self

    def with_filename(self, fields: dict[str, Any]) -> dict[str, Any]:
        """``job(..., filename=)`` names the file in every sentence of the job, not only the
        first: its updates' context gets ``filename`` unless they give their own."""
        if self._request.filename is not None:
            fields["context"] = {
                "filename": self._request.filename,
                **(fields.get("context") or {}),
            }
        return fields

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if exc is None:
            with contextlib.suppress(JobTerminal):  # the block may have finished the job itself
                await self.emitter.complete(self.job_id, **self.with_filename({}))
            return False
        if isinstance(exc, JobCancelled):
            return True
        if isinstance(exc, Exception) and not isinstance(exc, JobTerminal):
            error = str(exc) or type(exc).__name__
            await self.emitter.fail(self.job_id, error, **self.with_filename({}))
        return False

    async def progress(
        self, step: str, progress: float | None = None, **fields: Any
    ) -> Event | None:
        fields = self.with_filename(fields)
        return await self.emitter.send_progress(self.job_id, step, progress, **fields)

    async def complete(self, result: Any = None, **fields: Any) -> Event | None:
        return await self.emitter.complete(self.job_id, result, **self.with_filename(fields))

    async def is_cancel_requested(self) -> bool:
        return await self.emitter.is_cancel_requested(self.job_id)

    async def track(
        self,
        items: Iterable[T] | AsyncIterable[T],
        *,
        step: str,
        total: int | None = None,
        start: float = 0.0,
        end: float = 100.0,
    ) -> AsyncIterator[T]:
        """Wrap a loop like tqdm: each item moves progress from ``start`` towards ``end``."""
        meter = Meter(items, total, start, end)
        await self.progress(step, start if meter.total else None)
        if isinstance(items, AsyncIterable):
            async for item in items:
                yield item
                await self.emitter.emit_request(
                    self.job_id, self.with_filename(meter.advance(step))
                )
        else:
            for item in items:
                yield item
                await self.emitter.emit_request(
                    self.job_id, self.with_filename(meter.advance(step))
                )


class Meter:
    """Where a tracked loop stands: a share of ``start..end`` with a total, a count without."""

    def __init__(self, items: object, total: int | None, start: float, end: float) -> None:
        if total is None and hasattr(items, "__len__"):
            total = len(items)
        self.total = total
        self.start, self.end, self.done = start, end, 0

    def advance(self, step: str) -> Call:
        self.done += 1
        if self.total:
            share = min(self.done / self.total, 1.0)
            return {
                "step": step,
                "progress": self.start + (self.end - self.start) * share,
                "extra": {"processed": self.done},
            }
        return {"step": step, "extra": {"processed": self.done}}


def _call(**fields: Any) -> Call:
    call = {key: value for key, value in fields.items() if value is not None}
    for key in ("context", "extra"):
        if key in call:
            call[key] = dict(call[key])
    return call


def progress_call(
    step: str,
    progress: float | None,
    context: Mapping[str, object] | None,
    extra: Mapping[str, object] | None,
    owner: str | None,
    message: str | None,
) -> Call:
    """``send_progress``'s arguments as an update in the HTTP API's JSON shape: what ``_call``
    makes, written out for the call made on every update."""
    call: Call = {}
    if step is not None:
        call["step"] = step
    if progress is not None:
        call["progress"] = progress
    if context is not None:
        call["context"] = dict(context)
    if extra is not None:
        call["extra"] = dict(extra)
    if owner is not None:
        call["owner"] = owner
    if message is not None:
        call["message"] = message
    return call


def complete_call(
    result: Any,
    message: str | None,
    extra: Mapping[str, object] | None,
    context: Mapping[str, object] | None,
) -> Call:
    return _call(
        step="complete", status="done", result=result, message=message, extra=extra, context=context
    )


def fail_call(
    error: str, code: str, message: str | None, context: Mapping[str, object] | None
) -> Call:
    return _call(
        status="error", error={"code": code, "message": error}, message=message, context=context
    )
