"""Job stores: the embedded one for a single node, Redis for many.

The Redis store is imported on first use (PEP 562), so that a process that only needs the
contract (a worker before it connects) does not load redis.
"""

import importlib
import typing

from tidings.store.base import Applied, Catchup, JobStore, Limits, Update, limits_of
from tidings.store.memory_store import MemoryStore

if typing.TYPE_CHECKING:
    from tidings.store.redis_store import RedisStore, connect

__all__ = [
    "Applied",
    "Catchup",
    "JobStore",
    "Limits",
    "MemoryStore",
    "RedisStore",
    "Update",
    "connect",
    "limits_of",
]

_REDIS = frozenset({"RedisStore", "connect"})


def __getattr__(name: str) -> object:
    if name not in _REDIS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("tidings.store.redis_store"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
