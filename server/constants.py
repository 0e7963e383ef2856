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
