"""Server-Sent Events: the Socket.IO rooms for clients that can only hold a response open.

``GET /api/jobs/{id}/stream`` follows one job until its terminal event; ``GET /api/stream``
follows every job of the caller (the twin of the ``user:<sub>`` room) and never ends by itself.
Both join the room through ``FANOUT.listen`` *before* they read the store, as ``subscribe``
does, so no event falls between the read and the live feed. The server keeps the client rule
of PROTOCOL.md on the client's behalf: an event is written only when it is the next one of its
job; a gap, or a listener that overflowed, is filled from the store's history, and when the
history no longer holds it the client is sent ``resync`` with a Snapshot instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeAlias

from aiohttp import web
from tidings.constants import TERMINAL_STATUSES, job_room, user_room
from tidings.errors import InvalidRequest, NotFound, StoreUnavailable
from tidings.models import Event, Snapshot
from tidings.realtime.fanout import Listener
from tidings.service import JobService, event_name
from tidings.store import Catchup
from tidings.store.base import dump
from tidings.web.api import principal_of, readable_job, resume_point
from tidings.web.keys import FANOUT, SERVICE, SETTINGS, STREAMS

logger = logging.getLogger(__name__)

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
KEEPALIVE = b": keepalive\n\n"
#: Seconds between looks at whether the client left, its token expired or the server is
#: stopping: aiohttp does not cancel a handler when its client disconnects.
LIVENESS_CHECK = 1.0
_EVENT_NAMES = frozenset({"job_update", "job_complete", "job_error"})


#: How one job state goes on the wire: (event name, the event or snapshot, its id) -> bytes.
Frame: TypeAlias = Callable[[str, "Event | Snapshot", str], bytes]


def sse_frame(name: str, item: Event | Snapshot, event_id: str) -> bytes:
    """The protocol's own: a named message whose data is the Event or Snapshot."""
    return f"event: {name}\nid: {event_id}\ndata: {dump(item)}\n\n".encode()


class Streams:
    """The open streams of one node: counted for the metrics, told to end when it stops."""

    def __init__(self, keepalive: float) -> None:
        self.keepalive = keepalive
        self.open: Counter[str] = Counter()  # by kind: "job", "user"
        self.closing = False


class EventStream:
    """One SSE response and, per job, the ``(epoch, seq)`` it last sent."""

    def __init__(
        self,
        request: web.Request,
        service: JobService,
        *,
        expires_at: float | None,
        qualified: bool = False,
        frame: Frame = sse_frame,
    ) -> None:
        self.request = request
        self.frame = frame
        self.service = service
        self.expires_at = expires_at
        self.streams = request.app[STREAMS]
        self.response = web.StreamResponse(headers=HEADERS)
        self.response.content_type = "text/event-stream"
        self.response.charset = "utf-8"
        self.last: dict[str, tuple[str, int]] = {}
        self.finished: set[str] = set()
        self.qualified = qualified  # ids carry the job id (``/api/stream``)
        self._wrote_at = time.monotonic()

    @contextlib.asynccontextmanager
    async def open(self, kind: str) -> AsyncIterator[None]:
        """Send the headers; afterwards an error can only end the stream, never become JSON.

        A client that loses the stream reconnects with ``Last-Event-ID`` and catches up.
        """
        await self.response.prepare(self.request)
        self.streams.open[kind] += 1
        try:
            yield
        except ConnectionResetError:
            pass  # the client left
        except StoreUnavailable as exc:
            logger.warning("SSE stream ended: %s", exc.message)
        except Exception:
            logger.exception("SSE stream of %s failed", self.request.path)
        finally:
            self.streams.open[kind] -= 1
        with contextlib.suppress(ConnectionResetError):
            await self.response.write_eof()

    async def _write(self, chunk: bytes) -> None:
        await self.response.write(chunk)
        self._wrote_at = time.monotonic()

    async def send(self, name: str, item: Event | Snapshot) -> None:
        job_id, epoch, seq = item["job_id"], item["epoch"], item["seq"]
        event_id = f"{job_id}:{epoch}:{seq}" if self.qualified else f"{epoch}:{seq}"
        await self._write(self.frame(name, item, event_id))
        self.last[job_id] = (epoch, seq)
        if item["status"] in TERMINAL_STATUSES:
            self.finished.add(job_id)
        else:
            self.finished.discard(job_id)  # a job created again in a new epoch

    async def deliver(self, job_id: str, catchup: Catchup) -> None:
        """The missed events when the history held them, else the Snapshot to start over from."""
        if catchup.recovered:
            for event in catchup.events:
                await self.send(event_name(event), event)
        elif catchup.job is not None:
            await self.send("resync" if job_id in self.last else "snapshot", catchup.job)

    async def catch_up(self, job_id: str) -> None:
        epoch, since = self.last.get(job_id, (None, None))
        await self.deliver(job_id, await self.service.read(job_id, epoch, since))

    async def take(self, event: Event) -> None:
        """The client rule: the next event goes out, an old one is dropped, a gap is filled."""
        known = self.last.get(event["job_id"])
        if known is None:
            if event["seq"] == 1:  # the first event of an epoch: nothing comes before it
                await self.send(event_name(event), event)
            else:
                await self.catch_up(event["job_id"])
            return
        epoch, seq = known
        if event["epoch"] == epoch and event["seq"] <= seq:
            return
        if event["epoch"] == epoch and event["seq"] == seq + 1:
            await self.send(event_name(event), event)
            return
        await self.catch_up(event["job_id"])

    async def sync(self, jobs: Iterable[Snapshot]) -> None:
        """Bring every listed job up to date; an unfinished one the client lacks gets a snapshot."""
        for job in jobs:
            known = self.last.get(job["job_id"])
            if known is None:
                if job["status"] not in TERMINAL_STATUSES:
                    await self.send("snapshot", job)
            elif known != (job["epoch"], job["seq"]):
                await self.catch_up(job["job_id"])

    def _wanted(self) -> bool:
        transport = self.request.transport
        return (
            transport is not None
            and not transport.is_closing()
            and not self.streams.closing
            and (self.expires_at is None or time.time() < self.expires_at)
        )

    async def follow(
        self,
        listener: Listener,
        recover: Callable[[], Awaitable[None]],
        until: str | None = None,
    ) -> None:
        """Forward live events until job ``until`` ends, the client leaves, its token expires
        or the server stops; ``recover`` fills what an overflowing listener dropped."""
        tick = min(LIVENESS_CHECK, self.streams.keepalive)
        while (until is None or until not in self.finished) and self._wanted():
            if listener.overflowed:
                listener.overflowed = False
                await recover()
                continue
            try:
                async with asyncio.timeout(tick):
                    name, data = await listener.get()
            except TimeoutError:
                if time.monotonic() - self._wrote_at >= self.streams.keepalive:
                    await self._write(KEEPALIVE)
                continue
            for event in _events_of(name, data):
                await self.take(event)


def _events_of(name: str, data: Any) -> list[Event]:
    """The events of one room delivery; a ``job_batch`` frame carries several."""
    if name == "job_batch" and isinstance(data, dict):
        return list(data.get("events", []))
    if name in _EVENT_NAMES:
        return [data]
    return []


def last_event_id(request: web.Request, job_id: str) -> tuple[str | None, int | None]:
    """``(epoch, since)`` from ``Last-Event-ID`` (a reconnecting EventSource sends it, so it
    wins) or ``?last_event_id=``; ``(None, None)`` for a fresh start."""
    raw = request.headers.get("Last-Event-ID") or request.query.get("last_event_id")
    if not raw:
        return None, None
    epoch, _, since = raw.strip().rpartition(":")
    try:
        point = resume_point(job_id, epoch, since)
    except InvalidRequest as exc:
        raise InvalidRequest("Last-Event-ID must be <epoch>:<seq>, as the stream sent it.") from exc
    return point.epoch, point.since


async def job_stream(request: web.Request) -> web.StreamResponse:
    return await follow_job(request, sse_frame)


async def follow_job(request: web.Request, frame: Frame) -> web.StreamResponse:
    """One job until its terminal event, each state written by ``frame``."""
    service, job_id = await readable_job(request, query=True)
    epoch, since = last_event_id(request, job_id)
    caller = principal_of(request, query=True)
    stream = EventStream(request, service, expires_at=caller.expires_at, frame=frame)
    async with request.app[FANOUT].listen([job_room(job_id)]) as listener:
        catchup = await service.read(job_id, epoch, since)  # after joining: nothing falls between
        job = catchup.job
        if job is None:
            raise NotFound(f"There is no job {job_id}.")
        if epoch is not None and since is not None:
            if catchup.recovered and not catchup.events and job["status"] in TERMINAL_STATUSES:
                # Seen to the end: 204 is how SSE tells EventSource to stop reconnecting.
                return web.Response(status=204, headers=HEADERS)
            stream.last[job_id] = (epoch, since)
        async with stream.open("job"):
            await stream.deliver(job_id, catchup)
            await stream.follow(listener, lambda: stream.catch_up(job_id), until=job_id)
    return stream.response


async def user_stream(request: web.Request) -> web.StreamResponse:
    caller = principal_of(request, query=True)
    user = caller.user
    if user is None:
        raise InvalidRequest("Name the user: ?user_id= on an open server, a token otherwise.")
    service = request.app[SERVICE]
    stream = EventStream(request, service, expires_at=caller.expires_at, qualified=True)

    async def sync() -> None:
        await stream.sync(await service.owned_jobs(user))

    async with request.app[FANOUT].listen([user_room(user)]) as listener:
        jobs = await service.owned_jobs(user)  # after joining: nothing falls between
        async with stream.open("user"):
            await stream.sync(jobs)
            await stream.follow(listener, sync)
    return stream.response


async def _stop_streams(app: web.Application) -> None:
    app[STREAMS].closing = True


def setup_sse(app: web.Application) -> None:
    app[STREAMS] = Streams(app[SETTINGS].sse_keepalive)
    app.router.add_get("/api/jobs/{job_id}/stream", job_stream, allow_head=False)
    app.router.add_get("/api/stream", user_stream, allow_head=False)
    app.on_shutdown.append(_stop_streams)
