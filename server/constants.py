"""Redis key names, channels and protocol names in one place.

Every key of one job carries the hash tag ``{<job_id>}`` so that the merge script, which touches
all of them, would run unchanged on a Redis cluster.
"""

from __future__ import annotations

KEY_PREFIX = "tidings"

#: The Socket.IO Redis manager's pub/sub channel shared by every node.
SOCKETIO_CHANNEL = "tidings:socketio"

NAMESPACE = "/"

TERMINAL_STATUSES = frozenset({"done", "error", "cancelled"})

#: Jobs listed per owner (``list_jobs``, ``/api/stream``); older ones drop off the list.
MAX_LISTED_JOBS = 1000


def job_key(job_id: str) -> str:
    return f"{KEY_PREFIX}:{{{job_id}}}:job"


def extra_key(job_id: str) -> str:
    return f"{KEY_PREFIX}:{{{job_id}}}:extra"


def steps_key(job_id: str) -> str:
    return f"{KEY_PREFIX}:{{{job_id}}}:steps"


def events_key(job_id: str) -> str:
    return f"{KEY_PREFIX}:{{{job_id}}}:events"


def job_keys(job_id: str) -> list[str]:
    """The keys the merge script takes, in the order of its KEYS."""
    return [job_key(job_id), extra_key(job_id), steps_key(job_id), events_key(job_id)]


def user_jobs_key(user: str) -> str:
    return f"{KEY_PREFIX}:user:{{{user}}}:jobs"


def job_room(job_id: str) -> str:
    return f"job:{job_id}"


def user_room(user: str) -> str:
    return f"user:{user}"


# --- the ingestion pipeline's memory of earlier uploads (server/ingest/registry.py) ----------
# One hash tag per scope (the owner of the uploads), so each scope's keys live on one slot.

#: Seconds the memory of a scope's uploads lasts after its last upload.
INGEST_TTL = 30 * 86_400


def ingest_seen_key(scope: str) -> str:
    """HASH: file SHA-256 -> the job that first had that exact file."""
    return f"{KEY_PREFIX}:ingest:{{{scope}}}:seen"


def ingest_sketches_key(scope: str) -> str:
    """LIST: similarity sketches of the latest files, newest first."""
    return f"{KEY_PREFIX}:ingest:{{{scope}}}:sketches"


def ingest_records_key(scope: str, name_digest: str) -> str:
    """HASH: the latest upload of one file name (by digest) and its record hashes."""
    return f"{KEY_PREFIX}:ingest:{{{scope}}}:records:{name_digest}"
