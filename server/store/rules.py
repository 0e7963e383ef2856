"""The merge rules both job stores keep, written once.

The Redis store runs them inside ``apply_update.lua`` and the memory store in Python, and the
two had drifted. What can be data lives here, in one frozen ``Rules``: the limits, which status
may follow which, the ETA's constants, and how many digits a stored number keeps. The memory
store reads them directly; ``Rules.as_lua()`` is the same figures as a Lua table, written into
the script's text when the Redis store registers it, so neither side carries a copy of its own.

What cannot be data (the order of the steps, "empty means keep") is written the same way in both
and pinned by ``tests/server/test_store_equivalence.py``, which drives random updates through
both stores and compares every event and snapshot.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from tidings.store.base import Limits, Mode
from tidings.wire import JobStatus

#: Which status may follow which. A status an update asks for that is not listed is ignored (a
#: late ``queued`` cannot send a running job back); a status with no successors is terminal,
#: and a terminal job refuses every update.
Transitions = Mapping[JobStatus, frozenset[JobStatus]]

TRANSITIONS: Transitions = MappingProxyType(
    {
        "queued": frozenset({"queued", "processing", "done", "error", "cancelled"}),
        "processing": frozenset({"processing", "done", "error", "cancelled"}),
        "done": frozenset(),
        "error": frozenset(),
        "cancelled": frozenset(),
    }
)

#: Where an update that names no status moves a job (``create`` moves nothing): reporting
#: progress is what starts a queued job.
IMPLICIT: Mapping[JobStatus, JobStatus] = MappingProxyType({"queued": "processing"})


@dataclass(frozen=True, slots=True)
class Rules:
    """The figures of the merge, shared by both stores.

    ``eta_weight`` is the weight of the newest rate in the ETA's moving average (the older
    average keeps ``1 - eta_weight``); the ETA is rounded half up to ``eta_decimals``.
    ``number_digits`` is how many significant digits a stored number keeps: Lua's ``tostring``
    and Redis's cjson both write 14, so the memory store keeps 14 too rather than answer with
    digits the Redis store has already lost.
    """

    limits: Limits = field(default_factory=Limits)
    transitions: Transitions = field(default_factory=lambda: TRANSITIONS)
    implicit: Mapping[JobStatus, JobStatus] = field(default_factory=lambda: IMPLICIT)
    initial: JobStatus = "queued"
    eta_weight: float = 0.3
    eta_decimals: int = 1
    number_digits: int = 14

    def terminal(self, status: JobStatus) -> bool:
        return not self.transitions[status]

    def next_status(self, current: JobStatus, asked: JobStatus | None, mode: Mode) -> JobStatus:
        if asked is not None:
            return asked if asked in self.transitions[current] else current
        return current if mode == "create" else self.implicit.get(current, current)

    def ttl(self, status: JobStatus) -> int:
        """Seconds a job is kept after its last change: finished jobs go sooner."""
        return self.limits.done_ttl if self.terminal(status) else self.limits.active_ttl

    def stored(self, number: float) -> float:
        """A number as the store keeps and sends it."""
        return float(f"{number:.{self.number_digits}g}")

    def smoothed_rate(self, rate: float | None, instant: float) -> float:
        if rate is None:
            return instant
        return self.eta_weight * instant + (1 - self.eta_weight) * rate

    def eta_seconds(self, progress: float, rate: float) -> float | None:
        """Seconds left at ``rate`` points a second, rounded half up as Lua's ``math.floor``
        does (Python's ``round`` rounds half to even, and would disagree on the halves).

        None, and the ETA before it kept, when there is no rate or it is too slow for the ETA to
        be a number: a step of 1e-310 points (valid progress) would make it infinite, and no JSON
        can carry that.
        """
        scale = 10.0**self.eta_decimals
        scaled = (100 - progress) / rate * scale if rate > 0 else math.inf
        return math.floor(scaled + 0.5) / scale if math.isfinite(scaled) else None

    def as_json(self) -> dict[str, Any]:
        """The rules as plain JSON, for the Lua script; lists are sorted so the text is stable."""
        limits = self.limits
        return {
            "limits": {
                "history": limits.history,
                "active_ttl": limits.active_ttl,
                "done_ttl": limits.done_ttl,
                "max_extra_bytes": limits.max_extra_bytes,
                "max_steps": limits.max_steps,
            },
            "transitions": {status: sorted(after) for status, after in self.transitions.items()},
            "implicit": dict(self.implicit),
            "initial": self.initial,
            "eta": {"weight": self.eta_weight, "decimals": self.eta_decimals},
            "number_digits": self.number_digits,
        }

    def as_lua(self) -> str:
        """``as_json()`` as a Lua table constructor, for the text of ``apply_update.lua``: a
        table built by the script costs less per call than JSON decoded by it."""
        return _lua(self.as_json())


def _lua(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError(f"a rule must be a finite number, not {value}")
        return repr(value)
    if isinstance(value, str):  # decimal escapes for all but plain ASCII: Lua 5.1 has no \u
        return '"' + "".join(_lua_char(byte) for byte in value.encode()) + '"'
    if isinstance(value, list):
        return "{" + ", ".join(_lua(item) for item in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"[{_lua(key)}] = {_lua(item)}" for key, item in value.items()) + "}"
    raise TypeError(f"no Lua literal for {type(value).__name__}")


def _lua_char(byte: int) -> str:
    plain = 0x20 <= byte < 0x7F and byte not in b'"\\'
    return chr(byte) if plain else f"\\{byte:03d}"


def extra_text(extra: Mapping[str, str]) -> str:
    """The merged extra as one JSON object, keys sorted, written as the Lua script writes it.

    The size limit is measured on this text, so it must count the bytes the script counts:
    cjson escapes ``/`` and DEL in keys, where Python's ``json`` leaves them as they are.
    """
    return "{" + ",".join(f"{_key(key)}:{extra[key]}" for key in sorted(extra)) + "}"


def _key(key: str) -> str:
    return json.dumps(key, ensure_ascii=False).replace("/", "\\/").replace("\x7f", "\\u007f")
