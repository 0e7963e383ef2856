"""The embedded store: one node, no Redis, the same contract as the Redis store.

Every method runs without awaiting in between, so on one event loop each update is atomic.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tidings.constants import TERMINAL_STATUSES
from tidings.errors import Conflict, NotFound, PayloadTooLarge, terminal
from tidings.models import ErrorDict, Event, JobStatus, Snapshot, StepEntry
from tidings.store.base import OWNER_FIXED, Applied, Catchup, Limits, Update


@dataclass(slots=True)
class _Job:
    job_id: str
    epoch: str
    owner: str | None
    created_at: str
    created_ms: int
    seq: int = 0
    status: JobStatus = "queued"
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


class MemoryStore:
    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self._jobs: dict[str, _Job] = {}

    def _get(self, job_id: str) -> _Job | None:
        job = self._jobs.get(job_id)
        if job is not None and job.expires_at <= time.monotonic():
            del self._jobs[job_id]
            return None
        return job

    def sweep(self) -> int:
        """Drop expired jobs; how many went."""
        now = time.monotonic()
        expired = [job_id for job_id, job in self._jobs.items() if job.expires_at <= now]
        for job_id in expired:
            del self._jobs[job_id]
        return len(expired)

    async def apply(
        self, update: Update, *, epoch: str, now_iso: str, now_ms: int
    ) -> Applied | None:
        limits = self.limits
        current = self._get(update.job_id)
        if current is None:
            if update.mode == "update":
                raise NotFound(f"There is no job {update.job_id}.")
            job = _Job(update.job_id, epoch, update.owner, now_iso, now_ms)
        else:
            if update.mode == "create":
                raise Conflict(f"A job with the id {update.job_id} already exists.")
            if current.status in TERMINAL_STATUSES:
                raise terminal(update.job_id, current.status)
            if update.owner is not None and update.owner != current.owner:
                raise Conflict(OWNER_FIXED.format(job_id=update.job_id))
            job = current

        status: JobStatus = job.status
        if update.status is not None and not (update.status == "queued" and status != "queued"):
            status = update.status
        elif update.status is None and update.mode != "create" and status == "queued":
            status = "processing"
        step = update.step or job.step or status
        message = update.message if update.message is not None else job.message
        progress = job.progress
        if update.progress is not None and (progress is None or update.progress > progress):
            progress = update.progress
        if status == "done":
            progress = 100.0

        extra = dict(job.extra)
        extra.update(update.extra_set)
        for key in update.extra_del:
            extra.pop(key, None)
        extra_text = (
            "{"
            + ",".join(f"{json.dumps(k, ensure_ascii=False)}:{extra[k]}" for k in sorted(extra))
            + "}"
        )
        if len(extra_text.encode()) > limits.max_extra_bytes:
            raise PayloadTooLarge(
                f"extra would grow to {len(extra_text.encode())} bytes; "
                f"the limit is {limits.max_extra_bytes}."
            )
        result = update.result if update.result is not None else job.result
        error = update.error if update.error is not None else job.error

        changed = (
            current is None
            or extra != job.extra
            or (status, step, message, progress, result, error)
            != (job.status, job.step, job.message, job.progress, job.result, job.error)
        )
        if not changed:
            return None

        if progress != job.progress and progress is not None and status == "processing":
            if job.eta_t is not None and job.eta_p is not None and now_ms > job.eta_t:
                instant = (progress - job.eta_p) * 1000 / (now_ms - job.eta_t)
                job.rate = instant if job.rate is None else 0.3 * instant + 0.7 * job.rate
                if job.rate > 0:
                    job.eta = round((100 - progress) / job.rate, 1)
            job.eta_t, job.eta_p = now_ms, progress
        if status in TERMINAL_STATUSES:
            job.eta = None

        steps = job.steps
        if not steps or step != job.step:
            if steps and steps[-1]["status"] == "in_progress":
                steps[-1] = {**steps[-1], "status": "complete", "updated_at": now_iso}
            steps.append(
                {
                    "step": step,
                    "message": message,
                    "status": "in_progress",
                    "progress": progress,
                    "started_at": now_iso,
                    "updated_at": now_iso,
                }
            )
            del steps[: -limits.max_steps]
        else:
            steps[-1] = {
                **steps[-1],
                "message": message,
                "progress": progress,
                "updated_at": now_iso,
            }
        if status == "done":
            steps[-1] = {**steps[-1], "status": "complete"}
        elif status in TERMINAL_STATUSES:
            steps[-1] = {**steps[-1], "status": "error"}

        job.seq += 1
        job.status, job.step, job.message, job.progress = status, step, message, progress
        job.extra, job.result, job.error, job.updated_at = extra, result, error, now_iso
        job.cancel_requested = job.cancel_requested or status == "cancelled"
        ttl = limits.done_ttl if status in TERMINAL_STATUSES else limits.active_ttl
        job.expires_at = time.monotonic() + ttl
        event: Event = {
            "job_id": job.job_id,
            "epoch": job.epoch,
            "seq": job.seq,
            "status": status,
            "step": step,
            "message": message,
            "progress": progress,
            "eta_seconds": job.eta,
            "timestamp": now_iso,
            "extra": _decode(extra),
            "result": json.loads(result) if status == "done" and result else None,
            "error": error,
        }
        job.history.append(event)
        while len(job.history) > limits.history:
            job.history.popleft()
        self._jobs[job.job_id] = job
        return Applied(event, job.owner)

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

    async def list_jobs(self, owner: str, limit: int = 200) -> list[Snapshot]:
        mine = [
            job
            for job_id in list(self._jobs)
            if (job := self._get(job_id)) is not None and job.owner == owner
        ]
        mine.sort(key=lambda job: (job.created_ms, job.job_id), reverse=True)  # as Redis ties
        return [_snapshot(job) for job in mine[:limit]]

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        self._jobs.clear()


def _decode(extra: dict[str, str]) -> dict[str, Any]:
    return {key: json.loads(value) for key, value in sorted(extra.items())}


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
        "extra": _decode(job.extra),
        "result": json.loads(job.result) if job.status == "done" and job.result else None,
        "error": job.error,
        "cancel_requested": job.cancel_requested,
        "steps": [dict(entry) for entry in job.steps],  # type: ignore[misc]
    }
