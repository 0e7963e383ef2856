"""tidings: a realtime job-progress server. Workers report steps; people read sentences, live."""

from .app import create_app
from .auth import Authority, Principal
from .emitter import JobHandle, ProgressEmitter
from .errors import (
    Conflict,
    Forbidden,
    InvalidRequest,
    JobCancelled,
    JobTerminal,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    StoreUnavailable,
    TidingsError,
    Unauthorized,
)
from .models import Event, Snapshot, StepEntry
from .settings import Settings
from .sync_emitter import SyncJob, SyncProgressEmitter

__all__ = [
    "Authority",
    "Conflict",
    "Event",
    "Forbidden",
    "InvalidRequest",
    "JobCancelled",
    "JobHandle",
    "JobTerminal",
    "NotFound",
    "PayloadTooLarge",
    "Principal",
    "ProgressEmitter",
    "RateLimited",
    "Settings",
    "Snapshot",
    "StepEntry",
    "StoreUnavailable",
    "SyncJob",
    "SyncProgressEmitter",
    "TidingsError",
    "Unauthorized",
    "create_app",
]
