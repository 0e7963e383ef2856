"""The contract both job stores keep: one update in, at most one ordered Event out."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from tidings.constants import MAX_RECENT_JOBS
from tidings.errors import InvalidRequest
from tidings.wire import ErrorDict, Event, JobStatus, Snapshot, compact_json

if TYPE_CHECKING:  # a worker that passes no settings never loads pydantic-settings
    from tidings.settings import Settings

Mode = Literal["create", "upsert", "update"]


@dataclass(frozen=True, slots=True)
class Limits:
    history: int = 1000
    active_ttl: int = 7 * 86_400
    done_ttl: int = 86_400
    max_extra_bytes: int = 16_384
    max_steps: int = 200


def limits_of(settings: Settings) -> Limits:
    """The store limits a node's settings ask for."""
    return Limits(
        history=settings.history_limit,
        active_ttl=settings.idle_ttl,
        done_ttl=settings.done_ttl,
        max_extra_bytes=settings.max_extra_bytes,
    )


@dataclass(slots=True)
class Update:
    """One validated change to a job. ``None`` leaves a field as it is; nothing changes it once
    made (not frozen: a frozen dataclass sets each field through ``object.__setattr__``, which
    made one cost a worker 2 % of its CPU per update).

    ``mode``: ``create`` makes a new job and refuses an existing one, ``upsert`` creates the job
    when it is missing, ``update`` refuses a missing one.
    """

    job_id: str
    mode: Mode = "upsert"
    step: str | None = None
    message: str | None = None
    progress: float | None = None
    status: JobStatus | None = None
    extra_set: dict[str, str] = field(default_factory=dict)  # key -> value as JSON text
    extra_del: tuple[str, ...] = ()
    result: str | None = None  # JSON text
    error: ErrorDict | None = None
    owner: str | None = None

    @staticmethod
    def extra_patch(extra: Mapping[str, object] | None) -> tuple[dict[str, str], tuple[str, ...]]:
        """Split an extra patch into keys to set (as JSON text) and keys a null removes."""
        if not extra:
            return {}, ()
        set_: dict[str, str] = {}
        removed: list[str] = []
        for key, value in extra.items():  # one loop, not a comprehension and a generator
            if value is None:
                removed.append(key)
            else:
                set_[key] = dump(value)
        return set_, tuple(removed)


@dataclass(slots=True)
class Applied:
    """An update that changed something: its Event and the job's owner, for the user room.

    ``published`` when the store already published the Event to every node (the Redis store's
    script does, in the same atomic call); otherwise the service delivers it. Not frozen, as
    ``Update``: one is made per update.
    """

    event: Event
    owner: str | None
    published: bool = False


@dataclass(frozen=True, slots=True)
class Catchup:
    """What a subscriber gets: the snapshot and, when asked and still held, the missed events."""

    job: Snapshot | None
    events: list[Event]
    recovered: bool


class JobStore(Protocol):
    limits: Limits

    async def apply(
        self, update: Update, *, epoch: str, now_iso: str, now_ms: int
    ) -> Applied | None:
        """Merge an update atomically: its Event, or None when nothing visible changed.

        Raises NotFound (``update`` of a missing job), Conflict (``create`` of an existing one),
        JobTerminal, PayloadTooLarge (merged extra) and StoreUnavailable.
        """
        ...

    async def read(
        self, job_id: str, epoch: str | None = None, since: int | None = None
    ) -> Catchup:
        """The snapshot and, given ``epoch`` and ``since``, every later event if all are held."""
        ...

    async def owner_of(self, job_id: str) -> tuple[bool, str | None]:
        """Whether the job exists, and its owner: one lookup that costs the same either way, so
        that authorizing by it tells nobody whether a job they may not see exists."""
        ...

    async def list_jobs(self, owner: str, limit: int = 200) -> list[Snapshot]:
        """The owner's jobs, newest first."""
        ...

    async def recent_jobs(self, limit: int = MAX_RECENT_JOBS) -> list[Snapshot]:
        """The newest jobs of the whole server, whoever owns them, newest first: of the
        ``MAX_RECENT_JOBS`` made last, those that have not expired."""
        ...

    async def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers."""
        ...

    async def aclose(self) -> None: ...


OWNER_FIXED = "Job {job_id} belongs to another owner; an update cannot change who owns it."


_encode = compact_json(allow_nan=False)


def dump(value: object) -> str:
    """Compact JSON text; NaN and Infinity are refused, since no JSON reader could read them.

    A number is written as ``json`` writes it (its ``repr``) without the encoder, which takes
    half as long again: an update's progress and ``extra`` values are mostly numbers.
    """
    if type(value) is float and math.isfinite(value):
        return float.__repr__(value)
    if type(value) is int:
        return int.__repr__(value)
    try:
        return _encode(value)
    except ValueError as exc:
        raise InvalidRequest("Numbers must be finite: NaN and Infinity are not JSON.") from exc
