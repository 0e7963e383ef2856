"""tidings: a realtime job-progress server. Workers report steps; people read sentences, live.

This package is the worker API and nothing more: importing it loads no web server, no metrics
and no LLM SDK (a test pins that). The server is ``tidings.web.create_app``; the sentences are
``tidings.messages``; the command is ``tidings`` (``tidings.cli``).

``Settings`` (pydantic-settings, dotenv) and ``generate_friendly_status`` (the messages package)
are imported when first used (PEP 562), so ``from tidings import ProgressEmitter`` pays for
neither. Nor does it load redis and pydantic: an emitter imports them when it connects
(``ProgressEmitter.from_url``) and when it validates its first update.
"""

import importlib
import typing

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
from tidings.wire import Event, Snapshot, StepEntry
from tidings.worker.compat import send_websocket_progress
from tidings.worker.emitter import JobHandle, ProgressEmitter
from tidings.worker.sync_emitter import SyncJob, SyncProgressEmitter

if typing.TYPE_CHECKING:
    from tidings.messages import generate_friendly_status
    from tidings.settings import Settings

#: The public names imported on first use, and the module each comes from.
_LAZY = {"Settings": "tidings.settings", "generate_friendly_status": "tidings.messages"}

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


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
