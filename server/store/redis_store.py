"""The Redis store: where a progress update becomes a Redis write and a publish (through
apply_update.lua, one atomic call).

Calls to ``apply`` made within one turn of the event loop go to Redis as one pipeline: a worker
reporting on many jobs at once pays one round trip for all of them. One job's updates keep their
order: the pipeline runs its scripts in the order they were called.

The same store runs on a single Redis and on a Redis Cluster (``connect`` tells them apart). No
command touches two slots: a job's keys share its hash tag, and what spans jobs (the recent
list, an owner's list) is written and read key by key. On a cluster a pipeline is redis-py's
cluster pipeline, which sends each node its commands; it has no MULTI, so a job is read at one
instant by a script (read_job.lua), as it is merged by one.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from typing import Any, cast

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, RedisError
from tidings import constants
from tidings.errors import Conflict, NotFound, PayloadTooLarge, StoreUnavailable, terminal
from tidings.store.base import OWNER_FIXED, Applied, Catchup, Limits, Update, dump
from tidings.store.rules import Rules
from tidings.wire import Event, Snapshot, StepEntry

logger = logging.getLogger(__name__)

_SCRIPT = resources.files(__package__).joinpath("apply_update.lua").read_text()
_READ = resources.files(__package__).joinpath("read_job.lua").read_text()


@asynccontextmanager
async def _store_errors() -> AsyncIterator[None]:
    try:
        yield
    except RedisError as exc:
        raise StoreUnavailable("The job store is not answering; try again shortly.") from exc


#: A client of one Redis or of a Redis Cluster; both take the same commands.
Client = aioredis.Redis | RedisCluster

#: Whether each URL asked so far names a node of a Redis Cluster (see ``is_cluster``).
_KINDS: dict[str, bool] = {}


def is_cluster(url: str) -> bool:
    """Whether the Redis at ``url`` is a node of a Redis Cluster (``INFO cluster``).

    Asked once per URL and process, with a blocking client: ``from_url`` is not async. A Redis
    that does not answer is taken for a single one (what it was before clusters were known), and
    asked again by the next ``connect``.
    """
    known = _KINDS.get(url)
    if known is not None:
        return known
    try:
        with redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2) as probe:
            known = bool(probe.info("cluster").get("cluster_enabled") == 1)
    except RedisError as exc:
        logger.warning("could not ask Redis whether it is a cluster (%s): taken for one", exc)
        return False
    _KINDS[url] = known
    return known


def connect(url: str) -> Client:
    """A client with bounded timeouts, so a dead Redis turns into an error, not a hang; a
    cluster client when ``url`` names any node of a Redis Cluster."""
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": 5,
        "socket_connect_timeout": 5,
        "health_check_interval": 15,
    }
    client: Client
    if is_cluster(url):
        client = RedisCluster.from_url(url, **options)
    else:
        client = aioredis.Redis.from_url(url, **options)
    return client


def register(client: Client, script: str) -> AsyncScript:
    """``register_script`` of either client (redis-py types it for ``Redis`` only)."""
    return AsyncScript(cast(aioredis.Redis, client), script)


_Call = tuple[list[str], list[str], "asyncio.Future[Any]"]


class RedisStore:
    def __init__(self, client: Client, limits: Limits | None = None) -> None:
        self.client = client
        self.limits = limits or Limits()
        self._script = register(client, _SCRIPT)
        self._read = register(client, _READ)
        self._rules: tuple[Limits, str] | None = None
        self._queued: list[_Call] = []
        self._sending: set[asyncio.Task[None]] = set()

    def _rules_of(self, limits: Limits) -> str:
        """The script's rules as JSON text, encoded once per set of limits (a test may change
        them), not on every update."""
        if self._rules is None or self._rules[0] is not limits:
            self._rules = (limits, dump(Rules(limits).as_json()))
        return self._rules[1]

    async def apply(
        self, update: Update, *, epoch: str, now_iso: str, now_ms: int
    ) -> Applied | None:
        limits = self.limits
        argument = dump(
            {
                "job_id": update.job_id,
                "mode": update.mode,
                "now_iso": now_iso,
                "now_ms": now_ms,
                "epoch": epoch,
                "owner": update.owner or "",
                "step": update.step or "",
                "message": update.message or "",
                "progress": update.progress,
                "status": update.status or "",
                "extra": {"set": update.extra_set, "del": list(update.extra_del)},
                "result": update.result or "",
                "error": dump(update.error) if update.error else "",
                "job_channel": constants.job_channel(update.job_id),
                "user_channel": list(constants.USER_CHANNEL),
            }
        )
        async with _store_errors():
            keys = constants.job_keys(update.job_id)
            reply = await self._run(keys, [argument, self._rules_of(limits)])
        kind = reply[0]
        if kind == "event":
            event = cast(Event, json.loads(reply[1]))
            owner = reply[3]
            if reply[2] == 1:
                await self._index(owner, update.job_id, now_ms)
            return Applied(event, owner or None, published=True)
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

    async def _run(self, keys: list[str], arguments: list[str]) -> Any:
        """The script's reply, its call sent with whatever else is called in this loop turn."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queued.append((keys, arguments, future))
        if len(self._queued) == 1:
            loop.call_soon(self._send_queued)
        return await future

    def _send_queued(self) -> None:
        calls, self._queued = self._queued, []
        task = asyncio.get_running_loop().create_task(self._send(calls))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, calls: Sequence[_Call]) -> None:
        """One pipeline of EVALSHA; the script is loaded and the batch sent again only when
        Redis has lost it (a restart), so a batch costs one round trip."""
        try:
            replies = await self._evalsha(calls)
            if any(isinstance(reply, NoScriptError) for reply in replies):
                await self.client.script_load(_SCRIPT)
                replies = await self._evalsha(calls)
        except Exception as exc:
            replies = [exc] * len(calls)
        for (_, _, future), reply in zip(calls, replies, strict=True):
            if future.done():  # its caller was cancelled
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def _evalsha(self, calls: Sequence[_Call]) -> list[Any]:
        async with self.client.pipeline(transaction=False) as pipe:
            for keys, arguments, _ in calls:
                # Not ``pipe.evalsha``, which a cluster pipeline refuses; the command is the same.
                pipe.execute_command("EVALSHA", self._script.sha, len(keys), *keys, *arguments)
            replies: list[Any] = await pipe.execute(raise_on_error=False)
            return replies

    async def _index(self, owner: str, job_id: str, created_ms: int) -> None:
        """List a new job among the server's recent jobs and under its owner, the newest kept.

        Not in the merge script: the recent list is one key for the whole server, and the script
        touches one job's slot only. The update itself is already stored, so a failure here costs
        only the listing, never the event's delivery.
        """
        lists = [(constants.RECENT_JOBS_KEY, constants.MAX_RECENT_JOBS)]
        if owner:
            lists.append((constants.user_jobs_key(owner), constants.MAX_LISTED_JOBS))
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for key, kept in lists:
                    pipe.zadd(key, {job_id: created_ms})
                    pipe.zremrangebyrank(key, 0, -(kept + 1))
                    pipe.expire(key, self.limits.active_ttl)
                await pipe.execute()
        except RedisError:
            logger.warning("could not list new job %s", job_id, exc_info=True)

    async def read(
        self, job_id: str, epoch: str | None = None, since: int | None = None
    ) -> Catchup:
        first = "" if since is None else f"{since + 1}-0"
        async with _store_errors():  # read_job.lua: one instant, on a cluster too (no MULTI)
            flat_job, flat_extra, steps, entries = await self._read(
                keys=constants.job_keys(job_id), args=[first]
            )
        job = _snapshot(_pairs(flat_job), _pairs(flat_extra), steps)
        if job is None or epoch is None or since is None:
            return Catchup(job, [], False)
        if epoch != job["epoch"] or since > job["seq"]:
            return Catchup(job, [], False)
        events = [cast(Event, json.loads(_pairs(fields)["e"])) for _, fields in entries]
        if any(event["epoch"] != epoch for event in events):
            return Catchup(job, [], False)
        expected = list(range(since + 1, job["seq"] + 1))
        if [event["seq"] for event in events] != expected:
            return Catchup(job, [], False)
        return Catchup(job, events, True)

    async def owner_of(self, job_id: str) -> tuple[bool, str | None]:
        """One ``HMGET`` of two fields, whether or not the job's hash exists."""
        async with _store_errors():
            reply = self.client.hmget(constants.job_key(job_id), ["epoch", "owner"])
            epoch, owner = await cast(Awaitable[list[Any]], reply)
        if epoch is None:
            return False, None
        return True, (owner.decode() if isinstance(owner, bytes) else owner) or None

    async def list_jobs(self, owner: str, limit: int = 200) -> list[Snapshot]:
        return await self._listed(constants.user_jobs_key(owner), limit)

    async def recent_jobs(self, limit: int = constants.MAX_RECENT_JOBS) -> list[Snapshot]:
        return await self._listed(constants.RECENT_JOBS_KEY, limit)

    async def _listed(self, key: str, limit: int) -> list[Snapshot]:
        """The snapshots of a sorted set of job ids, newest first; ids whose job has expired
        are taken out of the set as they are found."""
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
        await asyncio.gather(*self._sending, return_exceptions=True)
        await self.client.aclose()


class RedisPublisher:
    """Publishes an event on the channels of its rooms, as the merge script does.

    The script publishes every update it stores; this is for delivering a stored event again
    (``JobService.republish_latest``), to every node that watches it.
    """

    def __init__(self, client: Client) -> None:
        self.client = client

    async def emit(self, event: str, data: Any, *, room: list[str], namespace: str) -> None:
        message = dump({"event": event, "data": data})
        async with self.client.pipeline(transaction=False) as pipe:
            for name in room:
                channel = constants.room_channel(name)
                if channel is not None:
                    pipe.execute_command(
                        "SPUBLISH" if channel[1] else "PUBLISH", channel[0], message
                    )
            await pipe.execute()


def _pairs(flat: list[str]) -> dict[str, str]:
    """A hash as a script returns it (field, value, field, value …) as a dict."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


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
