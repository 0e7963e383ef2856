"""The wire: what clients and workers may send (validated) and what they receive (typed).

What they receive lives in ``tidings.wire`` (plain typed dicts, re-exported here), so that a
worker's import loads no pydantic: the emitter imports this module on its first update.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    ValidationError,
    model_validator,
)
from tidings.errors import InvalidRequest
from tidings.wire import ErrorDict as ErrorDict
from tidings.wire import Event as Event
from tidings.wire import JobStatus as JobStatus
from tidings.wire import ListedJob as ListedJob
from tidings.wire import Snapshot as Snapshot
from tidings.wire import StepEntry as StepEntry
from tidings.wire import StepStatus as StepStatus
from tidings.wire import json_size as json_size

M = TypeVar("M", bound=BaseModel)


def _not_a_dot_segment(job_id: str) -> str:
    """``.`` and ``..`` are path steps: a URL cannot carry them, so no route could reach the job."""
    if job_id in (".", ".."):
        raise ValueError("a job id cannot be . or .. (no URL can carry it)")
    return job_id


JobId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,128}$"),
    AfterValidator(_not_a_dot_segment),
]
StepName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,100}$")]
UserId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:@-]{1,128}$")]
Epoch = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Progress = Annotated[float, Field(ge=0, le=100, allow_inf_nan=False)]
Message = Annotated[str, StringConstraints(min_length=1, max_length=500)]
ContextValue = Annotated[str, StringConstraints(max_length=2000)] | int | float | bool | None
Context = Annotated[
    dict[Annotated[str, StringConstraints(max_length=64)], ContextValue], Field(max_length=32)
]
Extra = dict[Annotated[str, StringConstraints(min_length=1, max_length=128)], JsonValue]


class WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ErrorInfo(WireModel):
    code: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,64}$")] = "failed"
    message: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class SubscribeRequest(WireModel):
    job_id: JobId
    epoch: Epoch | None = None
    since: Annotated[int, Field(ge=0, le=2**53)] | None = None

    @model_validator(mode="after")
    def _epoch_with_since(self) -> SubscribeRequest:
        if (self.epoch is None) != (self.since is None):
            raise ValueError("epoch and since go together: give both or neither")
        return self


class JobRequest(WireModel):
    job_id: JobId


class ListJobsRequest(WireModel):
    pass


class CreateJobRequest(WireModel):
    job_id: JobId | None = None
    owner: UserId | None = None
    filename: Annotated[str, StringConstraints(min_length=1, max_length=1000)] | None = None
    extra: Extra | None = None


class ProgressRequest(WireModel):
    """One update from a worker, as ``POST /api/jobs/{id}/progress`` and the emitter take it.

    Without ``step`` the job stays in its current step (a failure is marked in the step it
    happened in).
    """

    step: StepName | None = None
    progress: Progress | None = None
    context: Context | None = None
    extra: Extra | None = None
    status: JobStatus | None = None
    result: JsonValue = None
    error: ErrorInfo | None = None
    message: Message | None = None
    owner: UserId | None = None

    @model_validator(mode="after")
    def _fields_go_with_their_status(self) -> ProgressRequest:
        if self.error is not None and self.status not in (None, "error", "cancelled"):
            raise ValueError("error goes with status error or cancelled")
        if self.result is not None and self.status != "done":
            raise ValueError("result goes with status done")
        return self


def parse(model: type[M], payload: object) -> M:
    """Validate a payload, turning pydantic's report into one sentence a client can read."""
    return parser(model)(payload)


def parser(model: type[M]) -> Callable[[object], M]:
    """``parse`` for one model, to keep (the emitter's for every update): pydantic's validator
    called as it is, not through ``model_validate``, whose keyword handling adds a fifth to the
    cost of validating an update."""
    validate: Callable[[object], M] = model.__pydantic_validator__.validate_python

    def parse_one(payload: object) -> M:
        if payload is None:
            payload = {}
        if not isinstance(payload, dict):
            raise InvalidRequest("The payload must be a JSON object.")
        try:
            return validate(payload)
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_context=False, include_input=False)[0]
            parts = [str(part)[:64] for part in first["loc"]]
            where = ".".join(parts[:3] + (["..."] if len(parts) > 3 else [])) or "payload"
            raise InvalidRequest(f"{where}: {first['msg']}.") from exc

    return parse_one
