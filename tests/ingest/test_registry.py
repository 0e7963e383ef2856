"""The memory of earlier uploads keeps one contract in process and in Redis."""

from __future__ import annotations

from array import array
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from tidings.ingest.registry import MemoryRegistry, RedisRegistry, Registry, Remembered, Seen
from tidings.store import connect


@pytest.fixture(params=["memory", "redis"])
async def registry(request: pytest.FixtureRequest) -> AsyncIterator[Registry]:
    made: Registry = (
        RedisRegistry(connect(request.getfixturevalue("redis_url")))
        if request.param == "redis"
        else MemoryRegistry()
    )
    yield made
    await made.aclose()


def remembered(job_id: str, filename: str, sha: str, rows: list[int]) -> Remembered:
    return Remembered(
        job_id=job_id,
        filename=filename,
        sha256=sha,
        summary={"kind": "csv", "rows": len(rows)},
        sketch=tuple(sorted(rows))[:4],
        record_hashes=array("Q", rows),
    )


async def test_the_first_claim_wins_and_later_ones_see_it(registry: Registry) -> None:
    assert await registry.claim("alice", "sha-1", "job-1", "a.csv") is None
    assert await registry.claim("alice", "sha-1", "job-2", "copy.csv") == Seen("job-1", "a.csv")
    # another scope never sees it
    assert await registry.claim("bob", "sha-1", "job-3", "a.csv") is None


async def test_only_the_claiming_job_releases_its_claim(registry: Registry) -> None:
    await registry.claim("alice", "sha-1", "job-1", "a.csv")
    await registry.release("alice", "sha-1", "job-2")  # not its claim: nothing changes
    assert await registry.claim("alice", "sha-1", "job-3", "b.csv") == Seen("job-1", "a.csv")
    await registry.release("alice", "sha-1", "job-1")
    assert await registry.claim("alice", "sha-1", "job-4", "c.csv") is None


async def test_remembering_keeps_summary_sketch_and_records_by_name(registry: Registry) -> None:
    huge = 2**64 - 1  # the largest 64-bit hash survives the round trip
    await registry.claim("alice", "sha-1", "job-1", "a.csv")
    await registry.remember("alice", remembered("job-1", "a.csv", "sha-1", [1, 2, huge]))
    await registry.remember("alice", remembered("job-2", "b.csv", "sha-2", [5, 6]))
    await registry.remember("alice", remembered("job-3", "a.csv", "sha-3", [2, 3]))

    seen = await registry.claim("alice", "sha-1", "job-9", "x.csv")
    assert seen == Seen("job-1", "a.csv", {"kind": "csv", "rows": 3})
    sketches = await registry.sketches("alice")
    assert [(entry.job_id, entry.sketch) for entry in sketches] == [
        ("job-3", (2, 3)),
        ("job-2", (5, 6)),
        ("job-1", (1, 2, huge)),
    ]
    previous = await registry.previous("alice", "a.csv")
    assert previous is not None
    assert (previous.job_id, list(previous.record_hashes)) == ("job-3", [2, 3])
    assert await registry.previous("alice", "b.csv") is not None
    assert await registry.previous("alice", "c.csv") is None
    assert await registry.previous("bob", "a.csv") is None
    assert await registry.sketches("bob") == []


async def test_redis_keys_share_the_scope_hash_tag_and_expire(redis_url: str) -> None:
    registry = RedisRegistry(connect(redis_url))
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        await registry.claim("alice", "sha-1", "job-1", "a.csv")
        await registry.remember("alice", remembered("job-1", "a.csv", "sha-1", [1]))
        keys = sorted(await client.keys("tidings:ingest:*"))
        assert len(keys) == 3 and all("{alice}" in key for key in keys)
        assert all([await client.ttl(key) > 0 for key in keys])
    finally:
        await client.aclose()
        await registry.aclose()
