"""Concurrent emitters on one job never lose an update and never share a seq."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from tidings import ProgressEmitter, Settings
from tidings.service import JobService
from tidings.store import MemoryStore

WRITERS = 8
UPDATES = 500


async def hammer(emit: Callable[[int, int], Awaitable[object]]) -> None:
    async def writer(index: int) -> None:
        for count in range(UPDATES):
            await emit(index, count)

    await asyncio.gather(*(writer(index) for index in range(WRITERS)))


def check_history(service: JobService) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        job = await service.snapshot("shared")
        catchup = await service.read("shared", job["epoch"], 0)
        assert catchup.recovered
        seqs = [event["seq"] for event in catchup.events]
        assert seqs == list(range(1, WRITERS * UPDATES + 1))
        writes = {(e["extra"]["writer"], e["extra"]["count"]) for e in catchup.events}
        assert len(writes) == WRITERS * UPDATES
        assert job["seq"] == WRITERS * UPDATES
        assert job["extra"] == catchup.events[-1]["extra"]

    return check


async def test_eight_processes_worth_of_emitters_on_redis_lose_nothing(redis_url: str) -> None:
    settings = Settings(
        redis_url=redis_url, history_limit=WRITERS * UPDATES + 100, coalesce_window=0
    )
    emitters = [ProgressEmitter.from_url(redis_url, settings) for _ in range(WRITERS)]

    async def emit(index: int, count: int) -> object:
        return await emitters[index].send_progress(
            "shared", "extracting", extra={"writer": index, "count": count}
        )

    await hammer(emit)
    await check_history(emitters[0].service)()
    for emitter in emitters:
        await emitter.aclose()


async def test_concurrent_tasks_on_the_embedded_store_lose_nothing() -> None:
    class Nowhere:
        async def emit(self, *args: object, **kwargs: object) -> None:
            return None

    from tidings.messages import MessageWriter

    store = MemoryStore()
    store.limits = type(store.limits)(history=WRITERS * UPDATES + 100)
    service = JobService(store, Nowhere(), MessageWriter())
    emitter = ProgressEmitter(service, coalesce_window=0)

    async def emit(index: int, count: int) -> object:
        return await emitter.send_progress(
            "shared", "extracting", extra={"writer": index, "count": count}
        )

    await hammer(emit)
    await check_history(service)()


async def test_control_a_read_modify_write_merge_loses_updates(redis_url: str) -> None:
    """The same load through GET, merge in Python, SET: the failure the Lua script prevents."""
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    await client.set("naive", json.dumps({"seq": 0, "extra": {}}))

    async def emit(index: int, count: int) -> object:
        state = json.loads(await client.get("naive") or "{}")
        state["seq"] += 1
        state["extra"] = {"writer": index, "count": count}
        return await client.set("naive", json.dumps(state))

    await hammer(emit)
    final = json.loads(await client.get("naive") or "{}")
    assert final["seq"] < WRITERS * UPDATES
    await client.aclose()
