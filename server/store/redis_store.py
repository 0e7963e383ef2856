"""The Redis store: where a progress update becomes a Redis write (through apply_update.lua)."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from tidings import constants
from tidings.errors import Conflict, NotFound, PayloadTooLarge, StoreUnavailable, terminal
from tidings.models import Event, Snapshot, StepEntry
from tidings.store.base import OWNER_FIXED, Applied, Catchup, Limits, Update, dump

logger = logging.getLogger(__name__)

_SCRIPT = resources.files(__package__).joinpath("apply_update.lua").read_text()


@asynccontextmanager
async def _store_errors() -> AsyncIterator[None]:
    try:
        yield
    except RedisError as exc:
        raise StoreUnavailable("The job store is not answering; try again shortly.") from exc


def connect(url: str) -> aioredis.Redis:
    """A client with bounded timeouts, so a dead Redis turns into an error, not a hang."""
    client: aioredis.Redis = aioredis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=5,
        socket_connect_timeout=5,
        health_check_interval=15,
    )
    return client


class RedisStore:
    def __init__(self, client: aioredis.Redis, limits: Limits | None = None) -> None:
        self.client = client
        self.limits = limits or Limits()
        self._apply = client.register_script(_SCRIPT)

    async def apply(
        self, update: Update, *, epoch: str, now_iso: str, now_ms: int
    ) -> Applied | None:
        limits = self.limits
        args: list[str | int] = [
            update.job_id,
            update.mode,
            now_iso,
            now_ms,
            epoch,
            update.owner or "",
            update.step or "",
            update.message or "",
            "" if update.progress is None else repr(update.progress),
            update.status or "",
            dump({"set": update.extra_set, "del": list(update.extra_del)}),
            update.result or "",
            dump(update.error) if update.error else "",
            limits.history,
            limits.active_ttl,
            limits.done_ttl,
            limits.max_extra_bytes,
            limits.max_steps,
        ]
        async with _store_errors():
            reply = await self._apply(keys=constants.job_keys(update.job_id), args=args)
        kind = reply[0]
        if kind == "event":
            event = cast(Event, json.loads(reply[1]))
            owner = reply[3]
            if reply[2] == 1 and owner:
                await self._index(owner, update.job_id, now_ms)
            return Applied(event, owner or None)
        if kind == "none":
            return None
        if kind == "terminal":
            raise terminal(update.job_id, reply[1])
        if kind == "missing":
            raise NotFound(f"There is no job {update.job_id}.")
        if kind == "exists":
            raise Conflict(f"A job with the id {update.job_id} already exists.")
        if kind == "owner":
            raise Conflict(OWNER_FIXED.format(job_id=update.job_id))
        if kind == "too_large":
            raise PayloadTooLarge(
                f"extra would grow to {reply[1]} bytes; the limit is {limits.max_extra_bytes}."
            )
        raise AssertionError(f"apply_update.lua refused its input: {reply!r}")

    async def _index(self, owner: str, job_id: str, created_ms: int) -> None:
        """List a new job under its owner, newest kept; the update itself is already stored,
        so a failure here costs only the listing, never the event's delivery."""
        key = constants.user_jobs_key(owner)
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.zadd(key, {job_id: created_ms})
                pipe.zremrangebyrank(key, 0, -(constants.MAX_LISTED_JOBS + 1))
                pipe.expire(key, self.limits.active_ttl)
                await pipe.execute()
        except RedisError:
            logger.warning("could not list job %s under its owner", job_id, exc_info=True)

    async def read(
        self, job_id: str, epoch: str | None = None, since: int | None = None
    ) -> Catchup:
        keys = constants.job_keys(job_id)
        async with _store_errors(), self.client.pipeline(transaction=True) as pipe:
            pipe.hgetall(keys[0])
            pipe.hgetall(keys[1])
            pipe.lrange(keys[2], 0, -1)
            if since is not None:
                pipe.xrange(keys[3], min=f"{since + 1}-0")
            replies = await pipe.execute()
        job = _snapshot(replies[0], replies[1], replies[2])
        if job is None or epoch is None or since is None:
            return Catchup(job, [], False)
        if epoch != job["epoch"] or since > job["seq"]:
            return Catchup(job, [], False)
        events = [cast(Event, json.loads(fields["e"])) for _, fields in replies[3]]
        if any(event["epoch"] != epoch for event in events):
            return Catchup(job, [], False)
        expected = list(range(since + 1, job["seq"] + 1))
        if [event["seq"] for event in events] != expected:
            return Catchup(job, [], False)
        return Catchup(job, events, True)

    async def list_jobs(self, owner: str, limit: int = 200) -> list[Snapshot]:
        key = constants.user_jobs_key(owner)
        async with _store_errors():
            job_ids: list[str] = await self.client.zrevrange(key, 0, limit - 1)
        async with _store_errors(), self.client.pipeline(transaction=False) as pipe:
            for job_id in job_ids:  # one round trip for the whole list, not one per job
                keys = constants.job_keys(job_id)
                pipe.hgetall(keys[0])
                pipe.hgetall(keys[1])
                pipe.lrange(keys[2], 0, -1)
            replies = await pipe.execute()
        jobs = []
        gone = []
        for index, job_id in enumerate(job_ids):
            job = _snapshot(*replies[3 * index : 3 * index + 3])
            if job is None:
                gone.append(job_id)
            else:
                jobs.append(job)
        if gone:
            async with _store_errors():
                await self.client.zrem(key, *gone)
        return jobs

    async def ping(self) -> None:
        async with _store_errors():
            await self.client.ping()

    async def aclose(self) -> None:
        await self.client.aclose()


def _snapshot(job: dict[str, str], extra: dict[str, str], steps: list[str]) -> Snapshot | None:
    if not job.get("epoch"):
        return None
    return {
        "job_id": job["job_id"],
        "epoch": job["epoch"],
        "seq": int(job["seq"]),
        "owner": job["owner"] or None,
        "status": cast(Any, job["status"]),
        "step": job["step"],
        "message": job["message"],
        "progress": float(job["progress"]) if job["progress"] else None,
        "eta_seconds": float(job["eta"]) if job["eta"] else None,
        "created_at": job["created_at"],
        "updated_at": job["updated_at"],
        "extra": {key: json.loads(value) for key, value in sorted(extra.items())},
        "result": json.loads(job["result"]) if job["status"] == "done" and job["result"] else None,
        "error": json.loads(job["error"]) if job["error"] else None,
        "cancel_requested": job["cancel_requested"] == "1",
        "steps": [cast(StepEntry, json.loads(entry)) for entry in steps],
    }
