"""What an emitter checks at the call, before coalescing may hold an update.

A held update is sent later, from a timer or ``close()``, where an error reaches nobody who can
act on it. So whatever can be known without the store is checked when the worker calls: the
update's own ``extra`` against the size limit, the job's ``extra`` as this emitter's updates
have grown it, and an ``owner`` other than the one this emitter has seen the store accept. An
update naming an owner the emitter has not seen accepted is never held: only the store knows.
The store checks everything again; these checks only move its errors to the call.
"""

from __future__ import annotations

import threading
from typing import Any

from tidings.constants import TERMINAL_STATUSES
from tidings.errors import Conflict, PayloadTooLarge
from tidings.store.base import OWNER_FIXED
from tidings.wire import json_size


class CallChecks:
    def __init__(self, max_extra_bytes: int) -> None:
        self.max_extra_bytes = max_extra_bytes
        self._owners: dict[str, str] = {}
        self._extras: dict[str, dict[str, Any]] = {}
        #: Bytes the job's extra takes at most: its merged JSON holds no more than the merged
        #: before it and the patch, so the merged extra is measured only when that sum is over
        #: the limit, not on every update.
        self._sizes: dict[str, int] = {}
        self._lock = threading.Lock()  # a blocking emitter decides in its callers' threads

    def check(self, job_id: str, call: dict[str, Any]) -> bool:
        """Raise what the store would raise for this update; whether it may be held."""
        limit = self.max_extra_bytes
        with self._lock:
            owner = call.get("owner")
            known = self._owners.get(job_id)
            if owner is not None and known is not None and owner != known:
                raise Conflict(OWNER_FIXED.format(job_id=job_id))
            extra = call.get("extra")
            if extra:
                patch = json_size(extra)
                if patch > limit:
                    raise PayloadTooLarge(f"extra is larger than {limit} bytes.")
                merged = self._extras.get(job_id) or {}
                size = self._sizes.get(job_id, len("{}")) + patch
                if size > limit:  # measured on a copy: the job's own stays as it is if refused
                    merged = _merge_into(dict(merged), extra)
                    size = json_size(merged)
                    if size > limit:
                        raise PayloadTooLarge(
                            f"extra would grow to {size} bytes; the limit is {limit}."
                        )
                else:  # in place, not a new dict per update (that one would outlive many)
                    merged = _merge_into(merged, extra)
            if call.get("status") in TERMINAL_STATUSES:
                self._extras.pop(job_id, None)
                self._sizes.pop(job_id, None)
                self._owners.pop(job_id, None)
            elif extra:
                self._extras[job_id] = merged
                self._sizes[job_id] = size
            return owner is None or owner == known

    def accepted(self, job_id: str, owner: str | None) -> None:
        """The store took an update (or made the job) naming this owner."""
        if owner is not None:
            with self._lock:
                self._owners.setdefault(job_id, owner)


def _merge_into(merged: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``merged`` patched with ``extra`` as the store patches a job's extra: a None deletes."""
    merged.update(extra)
    for key, value in extra.items():
        if value is None:
            del merged[key]
    return merged
