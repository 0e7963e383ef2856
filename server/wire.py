"""What clients and workers receive: typed dicts, never validated, so they cost no pydantic.

``tidings.models`` re-exports them beside the pydantic models that validate what is sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
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


class SeedFields(TypedDict):
    """The names the seed documents read a job by: ``id`` (the job id), ``type`` (``extra.type``
    when it is text, else ``"job"``; uploads are ``"upload"``) and ``filename``
    (``extra.filename``, or null)."""

    id: str
    type: str
    filename: str | None


class ListedJob(Snapshot, SeedFields):
    """A Snapshot as the job lists (and ``GET /api/jobs/{id}``) hand it out: with the seed
    documents' fields on top, so code written against them reads a job unchanged (their
    ``created_at`` is the Snapshot's own)."""


#: A job's type when its ``extra.type`` names none.
DEFAULT_JOB_TYPE = "job"


def seed_fields(item: Event | Snapshot) -> SeedFields:
    extra = item["extra"]
    kind, filename = extra.get("type"), extra.get("filename")
    return {
        "id": item["job_id"],
        "type": kind if isinstance(kind, str) and kind else DEFAULT_JOB_TYPE,
        "filename": filename if isinstance(filename, str) else None,
    }


def listed(job: Snapshot) -> ListedJob:
    return {**job, **seed_fields(job)}


def compact_json(*, allow_nan: bool) -> Callable[[object], str]:
    """A writer of compact JSON text (``ensure_ascii=False``), its C encoder built once.

    ``json.dumps`` and ``JSONEncoder.encode`` build the C encoder anew on every call: most of the
    cost of a small value, and an update writes several. This one keeps no record of the
    containers it is inside (no circular check): every value it is given was validated as JSON
    (pydantic's JsonValue, which refuses a cycle) or decoded from JSON text, so none holds a
    cycle. Raises what ``JSONEncoder.encode`` raises: ValueError for NaN and Infinity when
    ``allow_nan`` is off, TypeError for what JSON cannot hold.
    """
    encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=allow_nan)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # no C accelerator (another Python): the encoder as it is
        return encoder.encode
    # The arguments JSONEncoder.iterencode gives it, with no markers (no circular check).
    write = make(
        None, encoder.default, json.encoder.encode_basestring, None, ":", ",", False, False,
        allow_nan,
    )  # fmt: skip

    def encode(value: object) -> str:
        return "".join(write(value, 0))

    return encode


_encode = compact_json(allow_nan=True)


def json_size(value: object) -> int:
    """Bytes of a value as compact JSON: the measure of the extra size limit."""
    text = _encode(value)
    return len(text) if text.isascii() else len(text.encode())
