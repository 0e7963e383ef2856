"""Progress-only updates of one job, collapsed: a tight loop must not send a million events.

An update is progress-only when it stays in the job's current step and sets no status. Within
``window`` seconds of the job's last sent update such updates are held, the latest replacing the
earlier (their ``extra`` patches merged key by key), and sent when the window ends. Anything
else, a new step or a status, first releases what is held, so order is kept and nothing that
changes a step or ends a job is ever delayed or dropped.

Decisions are taken under a thread lock, so a blocking emitter decides in its caller's thread
and crosses to its event loop only to send.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tidings.constants import TERMINAL_STATUSES

Call = dict[str, Any]  # the keyword arguments of one update, in the HTTP API's JSON shape


@dataclass(slots=True)
class _JobWindow:
    step: str | None = None
    sent_at: float = float("-inf")
    held: Call | None = None
    flush_scheduled: bool = False


@dataclass(slots=True)
class Decision:
    """``send`` these calls now, in order; or, when ``flush_at`` is set, schedule a flush then.
    (Not frozen, as ``tidings.store.Update``: one is made per update.)"""

    send: list[Call] = field(default_factory=list)
    flush_at: float | None = None


class Coalescer:
    def __init__(self, window: float) -> None:
        self.window = window
        self._jobs: dict[str, _JobWindow] = {}
        self._lock = threading.Lock()

    def offer(self, job_id: str, call: Call, *, hold: bool = True) -> Decision:
        """``hold=False``: the update may not be held (only the store can judge it)."""
        if self.window <= 0:  # nothing is ever held: no job's window to keep
            return Decision(send=[call])
        now = time.monotonic()
        with self._lock:
            state = self._jobs.setdefault(job_id, _JobWindow())
            progress_only = hold and call.get("status") is None and call.get("step") == state.step
            if progress_only and now - state.sent_at < self.window:
                state.held = _merge(state.held, call)
                if state.flush_scheduled:
                    return Decision()
                state.flush_scheduled = True
                return Decision(flush_at=state.sent_at + self.window)
            send = [state.held, call] if state.held is not None else [call]
            state.held = None
            state.step = call.get("step", state.step)
            state.sent_at = now
            if call.get("status") in TERMINAL_STATUSES:
                del self._jobs[job_id]
            return Decision(send=send)

    def release(self, job_id: str) -> Call | None:
        """What is held for a job whose window has ended (called by the scheduled flush)."""
        with self._lock:
            state = self._jobs.get(job_id)
            if state is None:
                return None
            state.flush_scheduled = False
            held, state.held = state.held, None
            if held is not None:
                state.sent_at = time.monotonic()
            return held

    def forget(self, job_id: str) -> None:
        """The job has ended: nothing of it is held or sent any more."""
        with self._lock:
            self._jobs.pop(job_id, None)

    def release_all(self) -> dict[str, Call]:
        with self._lock:
            held = {job_id: s.held for job_id, s in self._jobs.items() if s.held is not None}
            self._jobs.clear()
            return held


def _merge(held: Call | None, call: Call) -> Call:
    if held is None:
        return call
    merged = {**held, **call}
    if held.get("extra") or call.get("extra"):
        merged["extra"] = {**(held.get("extra") or {}), **(call.get("extra") or {})}
    return merged
