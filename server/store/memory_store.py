"""The embedded store: one node, no Redis, the same contract as the Redis store.

Every method runs without awaiting in between, so on one event loop each update is atomic. The
merge follows ``apply_update.lua`` step by step, with the figures of ``rules.py``; a generative
test (``tests/server/test_store_equivalence.py``) keeps the two answering alike.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from tidings.constants import MAX_RECENT_JOBS
from tidings.errors import Conflict, NotFound, PayloadTooLarge, terminal
from tidings.store.base import OWNER_FIXED, Applied, Catchup, Limits, Update
from tidings.store.rules import Rules, extra_text
from tidings.wire import ErrorDict, Event, JobStatus, Snapshot, StepEntry


@dataclass(slots=True)
class _Job:
    job_id: str
    epoch: str
    owner: str | None
    created_at: str
    created_ms: int
    status: JobStatus
    seq: int = 0
    step: str = ""
    message: str = ""
    progress: float | None = None
    eta: float | None = None
    rate: float | None = None
    eta_t: int | None = None
    eta_p: float | None = None
    updated_at: str = ""
    extra: dict[str, str] = field(default_factory=dict)  # key -> JSON text, as in Redis
    result: str | None = None
    error: ErrorDict | None = None
    cancel_requested: bool = False
    steps: list[StepEntry] = field(default_factory=list)
    history: deque[Event] = field(default_factory=deque)
    expires_at: float = 0.0


@dataclass(frozen=True, slots=True)
class _Merged:
    """A job's fields after an update, before anything is written."""

    status: JobStatus
    step: str
    message: str
    progress: float | None  # as the update gave it: the ETA is reckoned from this
    shown: float | None  # as it is stored and sent
    extra: dict[str, str]
    extra_text: str
    result: str | None
    error: ErrorDict | None

    def changes(self, job: _Job) -> bool:
        return self.extra != job.extra or (
            self.status,
            self.step,
            self.message,
            self.shown,
            self.result,
            self.error,
        ) != (job.status, job.step, job.message, job.progress, job.result, job.error)


class MemoryStore:
    """``clock`` gives the seconds the TTLs are counted in; a test passes one it can advance."""

    def __init__(
        self, limits: Limits | None = None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rules = Rules(limits or Limits())
        self._clock = clock
        self._jobs: dict[str, _Job] = {}
        #: As the Redis store's recent set: job id -> creation time, the newest kept.
        self._recent: dict[str, int] = {}

    @property
    def limits(self) -> Limits:
        return self.rules.limits

    @limits.setter
    def limits(self, limits: Limits) -> None:
        """As on the Redis store, where ``limits`` is a plain attribute."""
        self.rules = replace(self.rules, limits=limits)

    def _get(self, job_id: str) -> _Job | None:
        job = self._jobs.get(job_id)
        if job is not None and job.expires_at <= self._clock():
            del self._jobs[job_id]
            return None
        return job

    def sweep(self) -> int:
        """Drop expired jobs; how many went."""
        now = self._clock()
        expired = [job_id for job_id, job in self._jobs.items() if job.expires_at <= now]
        for job_id in expired:
            del self._jobs[job_id]
        return len(expired)

    async def apply(
        self, update: Update, *, epoch: str, now_iso: str, now_ms: int
    ) -> Applied | None:
        current = self._get(update.job_id)
        self._validate(update, current)
        job = current or _Job(
            update.job_id, epoch, update.owner or None, now_iso, now_ms, self.rules.initial
        )
        merged = self._merge(job, update)
        if current is not None and not merged.changes(job):
            return None
        self._estimate(job, merged, now_ms)
        self._extend_timeline(job, merged, now_iso)
        event = self._write(job, merged, now_iso)
        self._append_history(job, event)
        job.expires_at = self._clock() + self.rules.ttl(job.status)
        self._jobs[job.job_id] = job
        if current is None:
            self._list_recent(job)
        return Applied(event, job.owner)

    def _list_recent(self, job: _Job) -> None:
        """Add a new job to the recent list and trim it to the newest, as ZREMRANGEBYRANK does."""
        self._recent[job.job_id] = job.created_ms
        if len(self._recent) > MAX_RECENT_JOBS:
            oldest = min(self._recent.items(), key=lambda item: (item[1], item[0]))
            del self._recent[oldest[0]]

    def _validate(self, update: Update, current: _Job | None) -> None:
        """Refuse before anything changes, in the order the Lua script refuses."""
        if current is None:
            if update.mode == "update":
                raise NotFound(f"There is no job {update.job_id}.")
            return
        if update.mode == "create":
            raise Conflict(f"A job with the id {update.job_id} already exists.")
        if self.rules.terminal(current.status):
            raise terminal(update.job_id, current.status)
        if update.owner and update.owner != current.owner:
            raise Conflict(OWNER_FIXED.format(job_id=update.job_id))

    def _merge(self, job: _Job, update: Update) -> _Merged:
        """The job's next fields. Empty text keeps a field as it is, as ``''`` does in Lua."""
        rules = self.rules
        status = rules.next_status(job.status, update.status, update.mode)
        progress = job.progress
        if update.progress is not None and (progress is None or update.progress > progress):
            progress = update.progress
        if status == "done":
            progress = 100.0
        extra, text = self._merge_extra(job, update)
        return _Merged(
            status=status,
            step=update.step or job.step or status,
            message=update.message or job.message,
            progress=progress,
            shown=None if progress is None else rules.stored(progress),
            extra=extra,
            extra_text=text,
            result=update.result or job.result,
            error=update.error or job.error,
        )

    def _merge_extra(self, job: _Job, update: Update) -> tuple[dict[str, str], str]:
        """Key by key; the merged size is checked before anything is written."""
        extra = {**job.extra, **update.extra_set}
        for key in update.extra_del:
            extra.pop(key, None)
        text = extra_text(extra)
        size = len(text.encode())
        if size > self.limits.max_extra_bytes:
            raise PayloadTooLarge(
                f"extra would grow to {size} bytes; the limit is {self.limits.max_extra_bytes}."
            )
        return extra, text

    def _estimate(self, job: _Job, merged: _Merged, now_ms: int) -> None:
        """A moving average of the progress rate, recomputed when progress moves."""
        rules = self.rules
        progress = merged.progress
        if progress is not None and merged.shown != job.progress and merged.status == "processing":
            if job.eta_t is not None and job.eta_p is not None and now_ms > job.eta_t:
                instant = (progress - job.eta_p) * 1000 / (now_ms - job.eta_t)
                rate = rules.smoothed_rate(job.rate, instant)
                job.rate = rules.stored(rate)  # the next average starts from the stored rate
                eta = rules.eta_seconds(progress, rate)
                if eta is not None:
                    job.eta = rules.stored(eta)
            job.eta_t, job.eta_p = now_ms, merged.shown
        if rules.terminal(merged.status):
            job.eta = None

    def _extend_timeline(self, job: _Job, merged: _Merged, now_iso: str) -> None:
        """A new step completes the one before it; the job's end settles the last one."""
        steps = job.steps
        if not steps or merged.step != job.step:
            if steps and steps[-1]["status"] == "in_progress":
                steps[-1] = {**steps[-1], "status": "complete", "updated_at": now_iso}
            steps.append(
                {
                    "step": merged.step,
                    "message": merged.message,
                    "status": "in_progress",
                    "progress": merged.shown,
                    "started_at": now_iso,
                    "updated_at": now_iso,
                }
            )
            del steps[: -self.limits.max_steps]
        else:
            steps[-1] = {
                **steps[-1],
                "message": merged.message,
                "progress": merged.shown,
                "updated_at": now_iso,
            }
        if merged.status == "done":
            steps[-1] = {**steps[-1], "status": "complete"}
        elif self.rules.terminal(merged.status):
            steps[-1] = {**steps[-1], "status": "error"}

    def _write(self, job: _Job, merged: _Merged, now_iso: str) -> Event:
        """Allocate the next seq, write the fields, and make the Event that carries them."""
        job.seq += 1
        job.status, job.step, job.message = merged.status, merged.step, merged.message
        job.progress, job.extra, job.updated_at = merged.shown, merged.extra, now_iso
        job.result, job.error = merged.result, merged.error
        job.cancel_requested = job.cancel_requested or merged.status == "cancelled"
        return {
            "job_id": job.job_id,
            "epoch": job.epoch,
            "seq": job.seq,
            "status": job.status,
            "step": job.step,
            "message": job.message,
            "progress": job.progress,
            "eta_seconds": job.eta,
            "timestamp": now_iso,
            "extra": json.loads(merged.extra_text),
            "result": _result(job),
            "error": job.error,
        }

    def _append_history(self, job: _Job, event: Event) -> None:
        job.history.append(event)
        while len(job.history) > self.limits.history:
            job.history.popleft()

    async def read(
        self, job_id: str, epoch: str | None = None, since: int | None = None
    ) -> Catchup:
        job = self._get(job_id)
        if job is None:
            return Catchup(None, [], False)
        snapshot = _snapshot(job)
        if epoch is None or since is None or epoch != job.epoch or since > job.seq:
            return Catchup(snapshot, [], False)
        events = [event for event in job.history if event["seq"] > since]
        if [event["seq"] for event in events] != list(range(since + 1, job.seq + 1)):
            return Catchup(snapshot, [], False)
        return Catchup(snapshot, events, True)

    async def owner_of(self, job_id: str) -> tuple[bool, str | None]:
        job = self._get(job_id)
        return (False, None) if job is None else (True, job.owner)

    async def list_jobs(self, owner: str, limit: int = 200) -> list[Snapshot]:
        mine = [
            job
            for job_id in list(self._jobs)
            if (job := self._get(job_id)) is not None and job.owner == owner
        ]
        mine.sort(key=lambda job: (job.created_ms, job.job_id), reverse=True)  # as Redis ties
        return [_snapshot(job) for job in mine[:limit]]

    async def recent_jobs(self, limit: int = MAX_RECENT_JOBS) -> list[Snapshot]:
        listed = sorted(self._recent.items(), key=lambda item: (item[1], item[0]), reverse=True)
        jobs = []
        for job_id, _ in listed[:limit]:
            job = self._get(job_id)
            if job is None:
                del self._recent[job_id]  # expired: as the Redis store drops it when read
            else:
                jobs.append(_snapshot(job))
        return jobs

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        self._jobs.clear()


def _result(job: _Job) -> Any:
    """A job's result is shown once it is done, as the Redis store shows it."""
    return json.loads(job.result) if job.status == "done" and job.result else None


def _snapshot(job: _Job) -> Snapshot:
    return {
        "job_id": job.job_id,
        "epoch": job.epoch,
        "seq": job.seq,
        "owner": job.owner,
        "status": job.status,
        "step": job.step,
        "message": job.message,
        "progress": job.progress,
        "eta_seconds": job.eta,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "extra": {key: json.loads(value) for key, value in sorted(job.extra.items())},
        "result": _result(job),
        "error": job.error,
        "cancel_requested": job.cancel_requested,
        "steps": [dict(entry) for entry in job.steps],  # type: ignore[misc]
    }
