"""tidings: a realtime job-progress server. Workers report steps; people read sentences, live.

This package is the worker API and nothing more: importing it loads no web server, no metrics
and no LLM SDK (a test pins that). The server is ``tidings.web.create_app``; the sentences are
``tidings.messages``; the command is ``tidings`` (``tidings.cli``).
"""

from tidings.errors import (
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
from tidings.messages import generate_friendly_status
from tidings.models import Event, Snapshot, StepEntry
from tidings.settings import Settings
from tidings.worker.compat import send_websocket_progress
from tidings.worker.emitter import JobHandle, ProgressEmitter
from tidings.worker.sync_emitter import SyncJob, SyncProgressEmitter

__all__ = [
    "Conflict",
    "Event",
    "Forbidden",
    "InvalidRequest",
    "JobCancelled",
    "JobHandle",
    "JobTerminal",
    "NotFound",
    "PayloadTooLarge",
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
    "generate_friendly_status",
    "send_websocket_progress",
]
