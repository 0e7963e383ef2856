"""What clients and workers receive: typed dicts, never validated, so they cost no pydantic.

``tidings.models`` re-exports them beside the pydantic models that validate what is sent.
"""

from __future__ import annotations

import json
from typing import Any, Literal, TypedDict

JobStatus = Literal["queued", "processing", "done", "error", "cancelled"]
StepStatus = Literal["complete", "in_progress", "error"]


class ErrorDict(TypedDict):
    code: str
    message: str


class StepEntry(TypedDict):
    step: str
    message: str
    status: StepStatus
    progress: float | None
    started_at: str
    updated_at: str


class Event(TypedDict):
    job_id: str
    epoch: str
    seq: int
    status: JobStatus
    step: str
    message: str
    progress: float | None
    eta_seconds: float | None
    timestamp: str
    extra: dict[str, Any]
    result: Any
    error: ErrorDict | None


class Snapshot(TypedDict):
    job_id: str
    epoch: str
    seq: int
    owner: str | None
    status: JobStatus
    step: str
    message: str
    progress: float | None
    eta_seconds: float | None
    created_at: str
    updated_at: str
    extra: dict[str, Any]
    result: Any
    error: ErrorDict | None
    cancel_requested: bool
    steps: list[StepEntry]


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)  # built once, not per call


def json_size(value: object) -> int:
    """Bytes of a value as compact JSON: the measure of the extra size limit."""
    text = _ENCODER.encode(value)
    return len(text) if text.isascii() else len(text.encode())
