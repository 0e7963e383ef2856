"""What the pipeline has seen before: exact files, similarity sketches, records by file name.

Everything is kept per *scope*, the owner of the uploads, so one user never learns what another
uploaded. With Redis configured the memory is in Redis and every node shares it (a file uploaded
through one node is a duplicate when it comes again through another); otherwise it is in this
process. An exact file is *claimed* when its duplicate check runs, so two copies uploaded at the
same moment are told apart too; a pipeline that fails or is cancelled releases its claim.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import sys
from array import array
from collections import OrderedDict, deque
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, cast

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import RedisError
from tidings.errors import StoreUnavailable
from tidings.ingest.keys import (
    INGEST_TTL,
    ingest_records_key,
    ingest_seen_key,
    ingest_sketches_key,
)
from tidings.store.redis_store import Client, register

__all__ = [
    "ANONYMOUS_SCOPE",
    "MemoryRegistry",
    "Previous",
    "RedisRegistry",
    "Registry",
    "Remembered",
    "Seen",
    "SketchEntry",
    "scope_of",
]

#: The scope of uploads without an owner (open mode with no ``user_id``); no user id has a ``~``.
ANONYMOUS_SCOPE: Final = "~"
#: Exact files remembered per scope in memory (Redis keeps them until the scope's TTL).
MAX_SEEN: Final = 10_000
#: Recent sketches every upload is compared with.
MAX_SKETCHES: Final = 200
#: File names whose latest records are kept in memory, per scope.
MAX_NAMES: Final = 100


def scope_of(owner: str | None) -> str:
    return owner or ANONYMOUS_SCOPE


@dataclass(frozen=True, slots=True)
class Seen:
    """The job that first had an exact file; ``summary`` is None while it is still running."""

    job_id: str
    filename: str
    summary: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class SketchEntry:
    job_id: str
    filename: str
    sketch: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Previous:
    """The latest finished upload of a file name and the hashes of its records."""

    job_id: str
    record_hashes: array[int]


@dataclass(frozen=True, slots=True)
class Remembered:
    """A finished file, as later uploads compare with it."""

    job_id: str
    filename: str
    sha256: str
    summary: dict[str, Any]
    sketch: tuple[int, ...]
    record_hashes: array[int] = field(default_factory=lambda: array("Q"))


class Registry(Protocol):
    async def claim(self, scope: str, sha256: str, job_id: str, filename: str) -> Seen | None:
        """Record this job as the first to have the file, or return the one that was."""
        ...

    async def release(self, scope: str, sha256: str, job_id: str) -> None:
        """Forget a claim this job holds (its pipeline did not finish)."""
        ...

    async def sketches(self, scope: str) -> list[SketchEntry]:
        """The latest files' sketches, newest first."""
        ...

    async def previous(self, scope: str, filename: str) -> Previous | None: ...

    async def remember(self, scope: str, file: Remembered) -> None: ...

    async def aclose(self) -> None: ...


def _name_digest(filename: str) -> str:
    return hashlib.sha256(filename.encode()).hexdigest()[:32]


def pack(values: array[int]) -> str:
    """64-bit hashes as compact text (little-endian, base64), the same on every machine."""
    data = array("Q", values)
    if sys.byteorder == "big":
        data.byteswap()
    return base64.b64encode(data.tobytes()).decode()


def unpack(text: str) -> array[int]:
    data = array("Q")
    data.frombytes(base64.b64decode(text))
    if sys.byteorder == "big":
        data.byteswap()
    return data


# --- in memory -------------------------------------------------------------------------------


@dataclass
class _Scope:
    seen: OrderedDict[str, Seen] = field(default_factory=OrderedDict)
    sketches: deque[SketchEntry] = field(default_factory=lambda: deque(maxlen=MAX_SKETCHES))
    previous: OrderedDict[str, Previous] = field(default_factory=OrderedDict)


class MemoryRegistry:
    """One process's memory, bounded per scope; the default without Redis."""

    def __init__(self) -> None:
        self._scopes: dict[str, _Scope] = {}

    def _scope(self, scope: str) -> _Scope:
        return self._scopes.setdefault(scope, _Scope())

    async def claim(self, scope: str, sha256: str, job_id: str, filename: str) -> Seen | None:
        seen = self._scope(scope).seen
        existing = seen.get(sha256)
        if existing is not None:
            seen.move_to_end(sha256)
            return existing
        seen[sha256] = Seen(job_id, filename)
        while len(seen) > MAX_SEEN:
            seen.popitem(last=False)
        return None

    async def release(self, scope: str, sha256: str, job_id: str) -> None:
        seen = self._scope(scope).seen
        if sha256 in seen and seen[sha256].job_id == job_id:
            del seen[sha256]

    async def sketches(self, scope: str) -> list[SketchEntry]:
        return list(reversed(self._scope(scope).sketches))

    async def previous(self, scope: str, filename: str) -> Previous | None:
        return self._scope(scope).previous.get(filename)

    async def remember(self, scope: str, file: Remembered) -> None:
        state = self._scope(scope)
        state.seen[file.sha256] = Seen(file.job_id, file.filename, file.summary)
        state.seen.move_to_end(file.sha256)
        state.sketches.append(SketchEntry(file.job_id, file.filename, file.sketch))
        state.previous[file.filename] = Previous(file.job_id, file.record_hashes)
        state.previous.move_to_end(file.filename)
        while len(state.previous) > MAX_NAMES:
            state.previous.popitem(last=False)

    async def aclose(self) -> None:
        self._scopes.clear()


# --- in Redis --------------------------------------------------------------------------------

_RELEASE: Final = """
-- KEYS[1] the scope's seen hash; ARGV[1] the file's SHA-256, ARGV[2] the job id
-- Deletes the claim only when this job holds it. Returns 1 when deleted, else 0.
local entry = redis.call('HGET', KEYS[1], ARGV[1])
if not entry then return 0 end
if cjson.decode(entry)['job_id'] ~= ARGV[2] then return 0 end
return redis.call('HDEL', KEYS[1], ARGV[1])
"""


@contextlib.contextmanager
def _redis_errors() -> Iterator[None]:
    try:
        yield
    except RedisError as exc:
        raise StoreUnavailable(
            "The memory of earlier uploads is not answering; try again shortly."
        ) from exc


def _seen_json(seen: Seen) -> str:
    return json.dumps({"job_id": seen.job_id, "filename": seen.filename, "summary": seen.summary})


def _seen_of(text: str) -> Seen:
    data = json.loads(text)
    return Seen(data["job_id"], data["filename"], data.get("summary"))


class RedisRegistry:
    """The memory shared by every node, in the nodes' Redis; expires INGEST_TTL after use."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._release = register(client, _RELEASE)

    async def claim(self, scope: str, sha256: str, job_id: str, filename: str) -> Seen | None:
        key = ingest_seen_key(scope)
        mine = _seen_json(Seen(job_id, filename))
        with _redis_errors():
            for _ in range(3):  # a claim released between HSETNX and HGET: try again
                if await cast("Awaitable[int]", self.client.hsetnx(key, sha256, mine)):
                    await self.client.expire(key, INGEST_TTL)
                    return None
                existing = await cast("Awaitable[str | None]", self.client.hget(key, sha256))
                if existing is not None:
                    return _seen_of(existing)
        raise StoreUnavailable("The memory of earlier uploads keeps changing; try again.")

    async def release(self, scope: str, sha256: str, job_id: str) -> None:
        with _redis_errors():
            await self._release(keys=[ingest_seen_key(scope)], args=[sha256, job_id])

    async def sketches(self, scope: str) -> list[SketchEntry]:
        with _redis_errors():
            entries = await cast(
                "Awaitable[list[str]]",
                self.client.lrange(ingest_sketches_key(scope), 0, MAX_SKETCHES - 1),
            )
        found = []
        for entry in entries:
            data = json.loads(entry)
            found.append(
                SketchEntry(data["job_id"], data["filename"], tuple(unpack(data["sketch"])))
            )
        return found

    async def previous(self, scope: str, filename: str) -> Previous | None:
        with _redis_errors():
            data = await cast(
                "Awaitable[dict[str, str]]",
                self.client.hgetall(ingest_records_key(scope, _name_digest(filename))),
            )
        if not data:
            return None
        return Previous(data["job_id"], unpack(data["hashes"]))

    async def remember(self, scope: str, file: Remembered) -> None:
        seen_key = ingest_seen_key(scope)
        sketches_key = ingest_sketches_key(scope)
        records_key = ingest_records_key(scope, _name_digest(file.filename))
        sketch = json.dumps(
            {
                "job_id": file.job_id,
                "filename": file.filename,
                "sketch": pack(array("Q", file.sketch)),
            }
        )
        with _redis_errors():
            # One transaction on a single Redis; a cluster pipeline has none (one scope's keys
            # share a slot, so its commands still go to one node, in this order).
            single = not isinstance(self.client, RedisCluster)
            async with self.client.pipeline(transaction=single) as pipe:
                pipe.hset(
                    seen_key,
                    file.sha256,
                    _seen_json(Seen(file.job_id, file.filename, file.summary)),
                )
                pipe.lpush(sketches_key, sketch)
                pipe.ltrim(sketches_key, 0, MAX_SKETCHES - 1)
                pipe.hset(
                    records_key,
                    mapping={"job_id": file.job_id, "hashes": pack(file.record_hashes)},
                )
                for key in (seen_key, sketches_key, records_key):
                    pipe.expire(key, INGEST_TTL)
                await pipe.execute()

    async def aclose(self) -> None:
        await self.client.aclose()
