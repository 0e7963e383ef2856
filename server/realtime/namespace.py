"""The Socket.IO namespace: thin handlers that authorize, validate and call the service."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import socketio
from tidings.auth import Authority, Principal
from tidings.constants import NAMESPACE, job_room, user_room
from tidings.errors import (
    Forbidden,
    InvalidRequest,
    NotFound,
    RateLimited,
    StoreUnavailable,
    TidingsError,
    Unauthorized,
)
from tidings.models import JobRequest, ListJobsRequest, SubscribeRequest, parse
from tidings.service import JobService

logger = logging.getLogger(__name__)

Ack = dict[str, Any]
#: Jobs one socket may watch at once (the user room covers "all my jobs").
MAX_SUBSCRIPTIONS = 2000
_SOCKET_CODES = {"invalid_request", "forbidden", "rate_limited", "unavailable"}


@dataclass(slots=True)
class _Session:
    principal: Principal
    rate: float
    burst: float
    tokens: float
    stamp: float = field(default_factory=time.monotonic)
    jobs: set[str] = field(default_factory=set)
    #: One event at a time, in arrival order: python-socketio runs each event as its own task,
    #: and an ``unsubscribe`` must not overtake the ``subscribe`` before it.
    turn: asyncio.Lock = field(default_factory=asyncio.Lock)

    def take(self) -> None:
        """Token bucket: ``rate`` events a second, bursts of ``burst``."""
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            raise RateLimited("Too many requests on this connection; slow down.")
        self.tokens -= 1


def error_ack(exc: TidingsError) -> Ack:
    """The ack for a failure, in the socket vocabulary (a missing job reads as forbidden)."""
    if isinstance(exc, NotFound | Unauthorized):
        exc = Forbidden("You may not watch this job.")
    elif exc.code not in _SOCKET_CODES:
        exc = InvalidRequest(exc.message)
    return {"ok": False, "error": exc.to_dict()}


class JobNamespace(socketio.AsyncNamespace):  # type: ignore[misc]
    def __init__(self, service: JobService, authority: Authority, rate: float, burst: int) -> None:
        super().__init__(NAMESPACE)
        self.service = service
        self.authority = authority
        self.rate = rate
        self.burst = burst
        self._sessions: dict[str, _Session] = {}
        #: Events refused ``rate_limited``, by name (read by the metrics at scrape time). Only
        #: the handler table's names get this far, so a client cannot mint label values.
        self.rate_limited: Counter[str] = Counter()
        self._expiries: dict[str, asyncio.Task[None]] = {}
        self._handlers: dict[str, Callable[[_Session, str, object], Awaitable[Ack]]] = {
            "subscribe": self._subscribe,
            "unsubscribe": self._unsubscribe,
            "cancel": self._cancel,
            "list_jobs": self._list_jobs,
        }

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: object = None) -> None:
        auth = auth if isinstance(auth, dict) else {}
        try:
            principal = self.authority.principal(auth.get("token"), auth.get("user_id"))
        except Unauthorized:
            raise socketio.exceptions.ConnectionRefusedError("unauthorized") from None
        if principal.user is not None:
            try:
                await self.enter_room(sid, user_room(principal.user))
            except StoreUnavailable:
                raise socketio.exceptions.ConnectionRefusedError("unavailable") from None
        self._sessions[sid] = _Session(principal, self.rate, self.burst, self.burst)
        if principal.expires_at is not None:
            self._expiries[sid] = asyncio.create_task(self._expire(sid, principal.expires_at))

    async def _expire(self, sid: str, expires_at: float) -> None:
        await asyncio.sleep(max(0.0, expires_at - time.time()))
        logger.info("token of %s expired; disconnecting", sid)
        self._expiries.pop(sid, None)
        await self.disconnect(sid)

    async def on_disconnect(self, sid: str, reason: object = None) -> None:
        self._sessions.pop(sid, None)
        task = self._expiries.pop(sid, None)
        if task is not None:
            task.cancel()

    async def close(self) -> None:
        """Cancel and await every expiry timer (called at shutdown)."""
        tasks = list(self._expiries.values())
        self._expiries.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def events(self) -> list[str]:
        """The events it handles: the label values of its ``rate_limited`` counts."""
        return list(self._handlers)

    @property
    def connections(self) -> int:
        """Connected sockets (read by the metrics at scrape time)."""
        return len(self._sessions)

    @property
    def subscriptions(self) -> int:
        """Subscribed jobs summed over the sockets (read by the metrics at scrape time)."""
        return sum(len(session.jobs) for session in self._sessions.values())

    async def trigger_event(self, event: str, *args: Any) -> Any:
        handler = self._handlers.get(event)
        if event in ("connect", "disconnect"):
            return await super().trigger_event(event, *args)
        sid = args[0]
        session = self._sessions.get(sid)
        if session is None:
            return None
        if handler is None:
            return error_ack(InvalidRequest(f"Unknown event {event[:64]!r}."))
        payload = args[1] if len(args) > 1 else None
        try:
            session.take()
        except RateLimited as exc:
            self.rate_limited[event] += 1
            return error_ack(exc)
        try:
            async with session.turn:
                return await handler(session, sid, payload)
        except TidingsError as exc:
            return error_ack(exc)
        except Exception:
            logger.exception("%s from %s failed", event, sid)
            return error_ack(StoreUnavailable("Something went wrong on the server; try again."))

    async def _subscribe(self, session: _Session, sid: str, payload: object) -> Ack:
        request = parse(SubscribeRequest, payload)
        await self.service.authorize(session.principal, request.job_id)
        if request.job_id not in session.jobs and len(session.jobs) >= MAX_SUBSCRIPTIONS:
            raise InvalidRequest(f"A connection may watch at most {MAX_SUBSCRIPTIONS} jobs.")
        # Join first, then read: an event published in between is both delivered and in the read.
        await self.enter_room(sid, job_room(request.job_id))
        session.jobs.add(request.job_id)
        try:
            catchup = await self.service.read(request.job_id, request.epoch, request.since)
            job = catchup.job
            if job is not None and not session.principal.may_watch(request.job_id, job["owner"]):
                raise Forbidden("You may not watch this job.")
        except TidingsError:
            # Not subscribed after all: leave the room the read could not justify.
            await self.leave_room(sid, job_room(request.job_id))
            session.jobs.discard(request.job_id)
            raise
        return {"ok": True, "job": job, "events": catchup.events, "recovered": catchup.recovered}

    async def _unsubscribe(self, session: _Session, sid: str, payload: object) -> Ack:
        request = parse(JobRequest, payload)
        await self.leave_room(sid, job_room(request.job_id))
        session.jobs.discard(request.job_id)
        return {"ok": True}

    async def _cancel(self, session: _Session, sid: str, payload: object) -> Ack:
        request = parse(JobRequest, payload)
        await self.service.authorize(session.principal, request.job_id)
        return {"ok": True, "job": await self.service.cancel(request.job_id)}

    async def _list_jobs(self, session: _Session, sid: str, payload: object) -> Ack:
        parse(ListJobsRequest, payload)
        return {"ok": True, "jobs": await self.service.list_jobs(session.principal.user)}
