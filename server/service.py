"""The one service layer: Socket.IO handlers, HTTP routes and emitters all come through here."""

from __future__ import annotations

import base64
import contextlib
import functools
import logging
import random
import secrets
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from tidings.constants import NAMESPACE, job_room, user_room
from tidings.errors import Forbidden, InvalidRequest, JobTerminal, NotFound, PayloadTooLarge
from tidings.store.base import Catchup, JobStore, Update, dump
from tidings.wire import ErrorDict, Event, ListedJob, Snapshot, json_size, listed

if TYPE_CHECKING:  # the rule takes a Principal; a worker never loads the token code
    from tidings.auth import Principal
    from tidings.models import CreateJobRequest, ProgressRequest

logger = logging.getLogger(__name__)


class MessageSource(Protocol):
    def write(
        self, step: str, context: Mapping[str, object] | None = None, *, message: str | None = None
    ) -> str: ...


class Publisher(Protocol):
    """Delivers to rooms what the store does not publish itself: the embedded store's events,
    through the one node's Socket.IO server. (The Redis store's merge script publishes every
    event in the call that stores it, on the channels every node listens on.)"""

    async def emit(self, event: str, data: Any, *, room: list[str], namespace: str) -> None: ...


#: The error an ending carries when the worker gave none (events of these always carry one).
DEFAULT_ERRORS: dict[str, ErrorDict] = {
    "error": {"code": "failed", "message": "The job failed."},
    "cancelled": {"code": "cancelled", "message": "Cancelled."},
}


def event_name(event: Event) -> str:
    status = event["status"]
    if status == "done":
        return "job_complete"
    if status in ("error", "cancelled"):
        return "job_error"
    return "job_update"


#: The wire time's ending for each millisecond, written once (``:03d`` cost half of ``now``).
_MILLI_TEXT = tuple(f"{milli:03d}Z" for milli in range(1000))


def now() -> tuple[str, int]:
    """The time as the wire writes it (ISO-8601 UTC, milliseconds, ``Z``) and in milliseconds."""
    ms = time.time_ns() // 1_000_000
    second, milli = divmod(ms, 1000)
    return _second_text(second) + _MILLI_TEXT[milli], ms


@functools.lru_cache(maxsize=2)
def _second_text(second: int) -> str:
    """The wire time up to its milliseconds: formatting it was most of the cost of ``now`` on
    every update, and a second holds many updates."""
    return time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))


def new_epoch() -> str:
    """A name for a job's next life: it must differ from the last one, not be secret. One is
    drawn for every update (the store keeps it only when the update makes the job), so from
    ``random`` (reseeded in a forked child), not ``secrets``, whose system call cost a worker
    about 5 % of its CPU."""
    return base64.urlsafe_b64encode(random.getrandbits(48).to_bytes(6, "big")).decode()


class JobService:
    def __init__(
        self, store: JobStore, publisher: Publisher | None, messages: MessageSource
    ) -> None:
        """``publisher`` is None for a store that publishes what it stores (the Redis store)."""
        self.store = store
        self.publisher = publisher
        self.messages = messages

    async def report(
        self, job_id: str, request: ProgressRequest, *, mode: str = "upsert"
    ) -> Event | None:
        """Apply a worker's update and deliver the Event; None when nothing visible changed.

        The request's own dicts are read, not copied: the request is validated, hence its own.
        """
        extra = request.extra or None
        if extra is not None and json_size(extra) > self.store.limits.max_extra_bytes:
            raise PayloadTooLarge(
                f"extra is larger than {self.store.limits.max_extra_bytes} bytes."
            )
        error = request.error
        status = "error" if error is not None and request.status is None else request.status
        error_dict: ErrorDict | None = None
        if error is not None:
            error_dict = {"code": error.code, "message": error.message}
        elif status in DEFAULT_ERRORS:
            error_dict = DEFAULT_ERRORS[status]
        context: Mapping[str, object] | None = request.context
        if error_dict is not None and (context is None or "reason" not in context):
            context = {**(context or {}), "reason": error_dict["message"]}
        message = self._message(request.step, status, context, request.message)
        extra_set, extra_del = Update.extra_patch(extra)
        update = Update(
            job_id=job_id,
            mode=mode,  # type: ignore[arg-type]
            step=request.step,
            message=message,
            progress=request.progress,
            status=status,
            extra_set=extra_set,
            extra_del=extra_del,
            result=None if request.result is None else dump(request.result),
            error=error_dict,
            owner=request.owner,
        )
        return await self._apply(update)

    def _message(
        self,
        step: str | None,
        status: str | None,
        context: Mapping[str, object] | None,
        given: str | None,
    ) -> str | None:
        """The emitter's own message, else the sentence for the step (or for how the job ended)."""
        if status == "done":
            step = "complete"
        elif status in ("error", "cancelled"):
            step = status
        if step is None:
            return self.messages.write("processing", context, message=given) if given else None
        return self.messages.write(step, context, message=given)

    async def create(self, request: CreateJobRequest, owner: str | None) -> Snapshot:
        job_id = request.job_id or f"job-{secrets.token_urlsafe(9)}"
        extra: dict[str, Any] = dict(request.extra or {})
        context: dict[str, object] = {}
        if request.filename is not None:
            extra["filename"] = request.filename
            context["filename"] = request.filename
        if json_size(extra) > self.store.limits.max_extra_bytes:
            raise PayloadTooLarge(
                f"extra is larger than {self.store.limits.max_extra_bytes} bytes."
            )
        extra_set, extra_del = Update.extra_patch(extra)
        await self._apply(
            Update(
                job_id=job_id,
                mode="create",
                step="queued",
                message=self.messages.write("queued", context),
                status="queued",
                extra_set=extra_set,
                extra_del=extra_del,
                owner=owner,
            )
        )
        return await self.snapshot(job_id)

    async def cancel(self, job_id: str) -> Snapshot:
        """Cancel now: the job ends ``cancelled``; a worker learns it on its next update."""
        with contextlib.suppress(JobTerminal):  # already over: cancelling again changes nothing
            await self._apply(
                Update(
                    job_id=job_id,
                    mode="update",
                    message=self.messages.write("cancelled"),
                    status="cancelled",
                    error={"code": "cancelled", "message": "Cancelled at your request."},
                )
            )
        return await self.snapshot(job_id)

    async def snapshot(self, job_id: str) -> Snapshot:
        job = (await self.store.read(job_id)).job
        if job is None:
            raise NotFound(f"There is no job {job_id}.")
        return job

    async def authorize(self, principal: Principal, job_id: str) -> None:
        """The one rule of who may watch (and cancel) a job, for sockets and HTTP alike.

        An open server, a token that names the job, or the job's owner. Otherwise NotFound,
        worded the same whether the job exists or not, and reached the same way: one owner
        lookup whose cost does not depend on the job existing (no existence oracle).
        """
        if principal.open or job_id in principal.jobs:
            return
        exists, owner = await self.store.owner_of(job_id)
        if not (exists and principal.may_watch(job_id, owner)):
            raise NotFound(f"There is no job {job_id}.")

    async def read(
        self, job_id: str, epoch: str | None = None, since: int | None = None
    ) -> Catchup:
        return await self.store.read(job_id, epoch, since)

    async def owned_jobs(self, owner: str) -> list[Snapshot]:
        """The owner's newest jobs as Snapshots, for streams that send them as such."""
        return await self.store.list_jobs(owner)

    async def list_jobs(self, owner: str | None) -> list[ListedJob]:
        """The caller's newest jobs as the lists hand them out (``GET /api/jobs``, ``list_jobs``):
        Snapshots with the seed documents' fields on top."""
        if owner is None:
            return []
        return [listed(job) for job in await self.owned_jobs(owner)]

    async def recent_jobs(self, *, open_server: bool) -> list[ListedJob]:
        """The server's newest jobs, whoever owns them: only on an open server, where anyone may
        watch any job anyway. With a secret it would show users each other's jobs, so it is
        refused whatever the credentials (a token, even the API key, changes nothing)."""
        if not open_server:
            raise Forbidden("Recent jobs are listed only on an open server.")
        return [listed(job) for job in await self.store.recent_jobs()]

    async def is_cancel_requested(self, job_id: str) -> bool:
        job = (await self.store.read(job_id)).job
        return job is not None and (job["cancel_requested"] or job["status"] == "cancelled")

    async def _apply(self, update: Update) -> Event | None:
        if update.mode not in ("create", "upsert", "update"):
            raise InvalidRequest(f"Unknown update mode {update.mode!r}.")
        iso, ms = now()
        applied = await self.store.apply(update, epoch=new_epoch(), now_iso=iso, now_ms=ms)
        if applied is None:
            return None
        if not applied.published:
            await self._publish(applied.event, applied.owner)
        return applied.event

    async def latest_event(self, job_id: str) -> Event | None:
        """The job's newest event, from its history.

        For a worker whose reply was lost: its retry cannot tell it what its update made, but
        the update was stored, and so delivered (the store publishes in the call that stores;
        the embedded store cannot lose a reply), so it is read here, not delivered again.
        """
        job = (await self.store.read(job_id)).job
        if job is None or job["seq"] == 0:
            return None
        events = (await self.store.read(job_id, job["epoch"], job["seq"] - 1)).events
        return events[-1] if events else None

    async def _publish(self, event: Event, owner: str | None) -> None:
        if self.publisher is None:
            raise TypeError("This store does not publish its events: give JobService a publisher.")
        rooms = [job_room(event["job_id"])]
        if owner:
            rooms.append(user_room(owner))
        try:
            await self.publisher.emit(event_name(event), event, room=rooms, namespace=NAMESPACE)
        except Exception:
            # The event is in the history: subscribers fill the hole from there.
            logger.exception("Could not deliver %s seq %s", event["job_id"], event["seq"])
