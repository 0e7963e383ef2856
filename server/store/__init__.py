"""Job stores: the embedded one for a single node, Redis for many."""

from tidings.store.base import Applied, Catchup, JobStore, Limits, Update, limits_of
from tidings.store.memory_store import MemoryStore
from tidings.store.redis_store import RedisPublisher, RedisStore, connect

__all__ = [
    "Applied",
    "Catchup",
    "JobStore",
    "Limits",
    "MemoryStore",
    "RedisPublisher",
    "RedisStore",
    "Update",
    "connect",
    "limits_of",
]
