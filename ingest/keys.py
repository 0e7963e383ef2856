"""Redis keys of the pipeline's memory of earlier uploads (``registry.RedisRegistry``).

One hash tag per scope (the owner of the uploads), so each scope's keys live on one slot. The
prefix is tidings' own, so one ``redis-cli --scan --pattern 'tidings:*'`` finds everything.
"""

from __future__ import annotations

from tidings.constants import KEY_PREFIX

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
