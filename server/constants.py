"""Redis key names, channels and protocol names in one place.

Every key of one job carries the hash tag ``{<job_id>}`` so that the merge script, which touches
all of them, would run unchanged on a Redis cluster; so does the job's shard channel, which the
script publishes on (a cluster requires a script's shard channel in the slot of its keys).
"""

from __future__ import annotations

KEY_PREFIX = "tidings"

NAMESPACE = "/"

TERMINAL_STATUSES = frozenset({"done", "error", "cancelled"})

#: Jobs listed per owner (``list_jobs``, ``/api/stream``); older ones drop off the list.
MAX_LISTED_JOBS = 1000

#: Jobs in the server's list of recent jobs (``recent_jobs``, ``/api/jobs/recent``).
MAX_RECENT_JOBS = 50

#: Every job's id by creation time, the newest ``MAX_RECENT_JOBS`` kept. One key for the whole
#: server, so written beside the merge script (in its own call), never by it: the script touches
#: one job's slot only.
RECENT_JOBS_KEY = f"{KEY_PREFIX}:recent:jobs"


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


def job_channel(job_id: str) -> str:
    """The job's events, published with SPUBLISH by the merge script (a shard channel)."""
    return f"{KEY_PREFIX}:{{{job_id}}}:live"


#: The owner's channel is ``prefix + owner + suffix`` (the merge script builds it so).
USER_CHANNEL = (f"{KEY_PREFIX}:user:", ":live")


def user_channel(user: str) -> str:
    """Every event of the owner's jobs, published with classic PUBLISH (owners span slots)."""
    prefix, suffix = USER_CHANNEL
    return f"{prefix}{user}{suffix}"


def probe_channel(node: str) -> str:
    """A node's own channel, on which it checks that its subscription still hears."""
    return f"{KEY_PREFIX}:node:{node}:probe"


def room_channel(room: str) -> tuple[str, bool] | None:
    """The channel carrying a room's events and whether it is a shard channel; None for a
    room no channel carries (a socket's own room)."""
    kind, _, name = room.partition(":")
    if kind == "job" and name:
        return job_channel(name), True
    if kind == "user" and name:
        return user_channel(name), False
    return None
