"""The Redis store: where a progress update becomes a Redis write and a publish (through
apply_update.lua, one atomic call).

A call to ``apply`` made while nothing is on its way to Redis goes at once; calls made while
batches are on their way wait for the end of the event loop's turn and go together as the next
batch, one call of the merge script carrying them all (auto-pipelining): a worker reporting on
many jobs at once shares round trips, and one awaiting each update pays nothing for the batching.
On a single Redis the next batch is written while the ones before it are still on their way, on
the same connection (``_Lane``), so that the worker prepares a batch while Redis merges the last;
updates are merged in the order they were made, since Redis runs a connection's commands in
order. On a cluster one batch is on its way at a time.

The same store runs on a single Redis and on a Redis Cluster (``connect`` tells them apart). No
command touches two slots: a job's keys share its hash tag, and what spans jobs (the recent
list, an owner's list) is written and read key by key. On a cluster a batch is redis-py's
cluster pipeline, which sends each node its commands, one call per update; it has no MULTI, so
a job is read at one instant by a script (read_job.lua), as it is merged by one.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any, cast

import redis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from tidings import constants
from tidings.errors import Conflict, NotFound, PayloadTooLarge, StoreUnavailable, terminal
from tidings.store.base import OWNER_FIXED, Applied, Catchup, Limits, Update, dump
from tidings.store.rules import Rules
from tidings.wire import Event, Snapshot, StepEntry

logger = logging.getLogger(__name__)

_SCRIPT = resources.files(__package__).joinpath("apply_update.lua").read_text()
_READ = resources.files(__package__).joinpath("read_job.lua").read_text()


_NOT_ANSWERING = "The job store is not answering; try again shortly."
#: Seconds a batch of merges may take, sent and answered, before the store counts as down.
BATCH_TIMEOUT = 5.0
#: Callers of a batch woken per turn of the event loop. Woken all at once, a worker's callers
#: all make their next updates in one turn, which then go as one batch: Redis waits while they
#: are made, and the worker while Redis merges them. Woken a few per turn, the first updates go
#: to Redis while the next are made. One worker, 64 updates in flight over 100 jobs, worker and
#: Redis on cores of their own: 14,000 to 17,000 updates/s woken at once, 36,000 by 8 (25,000
#: by 16, 17,000 by 32).
WAKE_AT_ONCE = 8


@asynccontextmanager
async def _store_errors() -> AsyncIterator[None]:
    try:
        yield
    except RedisError as exc:
        raise StoreUnavailable(_NOT_ANSWERING) from exc


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


@dataclass(frozen=True, slots=True)
class _Script:
    """The merge script with one set of rules written into its text (``Rules.as_lua``)."""

    limits: Limits
    text: str
    sha: str

    @classmethod
    def of(cls, limits: Limits) -> _Script:
        text = _SCRIPT.replace("--[[rules]]", Rules(limits).as_lua(), 1)
        return cls(limits, text, hashlib.sha1(text.encode()).hexdigest())


_Call = tuple[_Script, list[str], list[str]]  # the script, its keys, its arguments


class _Lane:
    """One connection to a single Redis, for as long as it works, that batches are written to one
    after another without waiting for the replies of the ones before; each batch reads its replies
    once the batch written before it has read its own (Redis answers a connection's commands in
    the order they came). Once a batch fails, the lane is broken: a batch written after it fails
    too, without reading (it would read another batch's replies), and the next batch takes a new
    lane.
    """

    def __init__(self, connection: AbstractConnection) -> None:
        self.connection = connection
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        self.written = done  # the last batch has been written to the connection (or given up)
        self.read = done  # the last batch has read its replies (or given up)
        self.broken = False


class RedisStore:
    def __init__(self, client: Client, limits: Limits | None = None) -> None:
        self.client = client
        self.limits = limits or Limits()
        self._script = _Script.of(self.limits)
        self._read = register(client, _READ)
        self._queued: list[tuple[_Call, asyncio.Future[Any]]] = []  # the next batch
        self._on_their_way = 0  # batches sent and not yet answered
        self._sending: set[asyncio.Task[None]] = set()
        self._lane: _Lane | None = None  # what the merge batches go through on a single Redis
        self._cluster_batch: asyncio.Future[None] | None = None  # the last batch on a cluster

    def _script_of(self, limits: Limits) -> _Script:
        """The script of the store's limits, written once per set of limits (a test may change
        them), not on every update."""
        if self._script.limits is not limits:
            self._script = _Script.of(limits)
        return self._script

    async def apply(
        self, update: Update, *, epoch: str, now_iso: str, now_ms: int
    ) -> Applied | None:
        limits = self.limits
        keys, channel = _job_names(update.job_id)
        patch = ""
        if update.extra_set or update.extra_del:
            patch = dump({"set": update.extra_set, "del": update.extra_del})  # a tuple: an array
        arguments = [
            update.job_id,
            update.mode,
            now_iso,
            str(now_ms),
            epoch,
            update.owner or "",
            update.step or "",
            update.message or "",
            "" if update.progress is None else dump(update.progress),
            update.status or "",
            patch,
            update.result or "",
            dump(update.error) if update.error else "",
            channel,
            *constants.USER_CHANNEL,
        ]
        try:  # not _store_errors(): an async context manager costs a worker 2 % of its CPU
            reply = await self._run((self._script_of(limits), keys, arguments))
        except RedisError as exc:
            raise StoreUnavailable(_NOT_ANSWERING) from exc
        kind = reply[0]
        if kind == "event":
            event = cast(Event, _decoded(reply[1]))
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

    async def _run(self, call: _Call) -> Any:
        """The script's reply. A call made while nothing is on its way to Redis goes at once, from
        the caller's own task (no loop turn waited, no task made); calls made while batches are
        on their way go together at the end of the loop's turn, as the next batch.
        """
        if self._on_their_way or self._queued:
            loop = asyncio.get_running_loop()
            future: asyncio.Future[Any] = loop.create_future()
            if not self._queued:
                loop.call_soon(self._send_queued)
            self._queued.append((call, future))
            return await future
        self._on_their_way += 1
        try:
            (reply,) = await self._replies([call])
        finally:
            self._on_their_way -= 1
        if isinstance(reply, Exception):
            raise reply
        return reply

    def _send_queued(self) -> None:
        """Send the calls made during the loop's last turn, as one batch."""
        queued, self._queued = self._queued, []
        self._on_their_way += 1
        task = asyncio.get_running_loop().create_task(self._send(queued))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, queued: Sequence[tuple[_Call, asyncio.Future[Any]]]) -> None:
        try:
            try:
                replies = await self._replies([call for call, _ in queued])
            except Exception as exc:
                replies = [exc] * len(queued)
            finally:
                self._on_their_way -= 1
            await self._wake(queued, replies)
        except BaseException:  # the task itself was cancelled (at shutdown): so are its callers
            for _, future in queued:
                future.cancel()  # (nothing, for one already woken)
            raise

    @staticmethod
    async def _wake(
        queued: Sequence[tuple[_Call, asyncio.Future[Any]]], replies: Sequence[Any]
    ) -> None:
        """Hand each caller its reply, ``WAKE_AT_ONCE`` per turn of the loop."""
        for index, ((_, future), reply) in enumerate(zip(queued, replies, strict=True)):
            if index and not index % WAKE_AT_ONCE:
                await asyncio.sleep(0)  # the next ones in the loop's next turn
            if future.done():  # its caller was cancelled
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def _replies(self, calls: Sequence[_Call]) -> list[Any]:
        """Each call's reply, for one round trip; a script is loaded and the batch sent again only
        when Redis has lost it (a restart)."""
        replies = await self._evalsha(calls)
        lost = {
            script
            for (script, _, _), reply in zip(calls, replies, strict=True)
            if isinstance(reply, NoScriptError)
        }
        if lost:
            for script in lost:
                await self.client.script_load(script.text)
            replies = await self._evalsha(calls)
        return replies

    async def _evalsha(self, calls: Sequence[_Call]) -> list[Any]:
        """The batch as one EVALSHA of the merge script carrying every update (it merges them in
        order, each as on its own), on the store's lane; a reply is a value or the error Redis
        answered, the same for every update of a call that failed as a whole.

        On a single Redis, not redis-py's ``pipeline()``, which takes a connection from the pool
        and checks it for every batch (that cost a worker awaiting each update a third of its
        CPU), and waits for a batch's replies before the next can go (a cluster has no single
        connection: ``_evalsha_on_cluster``). A lane's connection is made with the pool's
        settings but no socket timeout, and each batch as a whole is bounded instead: with one,
        redis-py arms a timer for every reply and makes a task for every send.
        """
        if isinstance(self.client, RedisCluster):
            return await self._evalsha_on_cluster(calls)
        lane = self._lane
        if lane is None or lane.broken:
            pool = self.client.connection_pool
            lane = self._lane = _Lane(
                pool.connection_class(**{**pool.connection_kwargs, "socket_timeout": None})
            )
        written_before, read_before = lane.written, lane.read
        loop = asyncio.get_running_loop()
        written = lane.written = loop.create_future()
        read = lane.read = loop.create_future()
        grouped = _grouped(calls)
        replies: list[Any] = []
        try:
            async with asyncio.timeout(BATCH_TIMEOUT):
                await written_before  # the batch before connects or writes
                if lane.broken:
                    raise RedisConnectionError("An earlier batch on this connection failed.")
                commands = _evalsha_commands([call for call, _ in grouped])
                await lane.connection.send_packed_command(commands, check_health=False)
                written.set_result(None)
                await read_before  # the batch before reads its replies
                if lane.broken:
                    raise RedisConnectionError("An earlier batch on this connection failed.")
                for _, count in grouped:
                    try:
                        replies += await lane.connection.read_response()
                    except ResponseError as exc:
                        replies += [exc] * count
        except BaseException as exc:
            lane.broken = True
            await lane.connection.disconnect(nowait=True)  # with whatever it has not read
            if isinstance(exc, TimeoutError):
                raise RedisTimeoutError("Redis did not answer the batch in time.") from exc
            raise
        finally:
            for future in (written, read):
                if not future.done():
                    future.set_result(None)
        return replies

    async def _evalsha_on_cluster(self, calls: Sequence[_Call]) -> list[Any]:
        """The batch through redis-py's cluster pipeline, which sends each node its commands: one
        EVALSHA per update, whose keys are in one slot. One batch at a time (a pipeline uses
        several connections), so that updates are merged in the order they were made."""
        before = self._cluster_batch
        done = self._cluster_batch = asyncio.get_running_loop().create_future()
        try:
            if before is not None:
                await before
            async with self.client.pipeline(transaction=False) as pipe:
                for script, keys, arguments in calls:
                    # Not ``pipe.evalsha``, which a cluster pipeline refuses; the same command.
                    pipe.execute_command("EVALSHA", script.sha, len(keys), *keys, *arguments)
                replies: list[Any] = await pipe.execute(raise_on_error=False)
        finally:
            done.set_result(None)
        return [reply if isinstance(reply, Exception) else reply[0] for reply in replies]

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
        if self._lane is not None:
            await self._lane.connection.disconnect()
            self._lane = None
        await self.client.aclose()


_scan: Callable[[str, int], tuple[Any, int]]
_scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # not in typeshed


def _decoded(text: str) -> Any:
    """JSON text the merge script wrote (cjson: no whitespace around it), read by the json
    module's C scanner itself: ``json.loads`` spends two fifths of its time on an Event looking
    for whitespace around it."""
    try:
        value, _ = _scan(text, 0)
    except StopIteration as exc:  # nothing at the start that reads as JSON
        raise json.JSONDecodeError("Expecting value", text, exc.value) from None
    return value


@functools.lru_cache(maxsize=4096)
def _job_names(job_id: str) -> tuple[list[str], str]:
    """A job's keys (never changed by their users) and its channel, written once for the many
    updates of a job, not on each."""
    return constants.job_keys(job_id), constants.job_channel(job_id)


def _grouped(calls: Sequence[_Call]) -> list[tuple[_Call, int]]:
    """Consecutive calls of one script as one call of it, their keys and arguments one after the
    other (the script merges them in that order), each with the number of calls it holds."""
    grouped: list[tuple[_Call, int]] = []
    for script, keys, arguments in calls:
        if grouped and grouped[-1][0][0] is script:
            (_, all_keys, all_arguments), count = grouped[-1]
            all_keys += keys
            all_arguments += arguments
            grouped[-1] = (grouped[-1][0], count + 1)
        else:
            grouped.append(((script, list(keys), list(arguments)), 1))
    return grouped


def _evalsha_commands(calls: Sequence[_Call]) -> bytes:
    """The batch in the Redis protocol, written here as text and encoded once (an ASCII string's
    length is its length in bytes): redis-py's packer, which takes any type and splits large
    values, spent several times as long on these few strings."""
    out: list[str] = []
    for script, keys, arguments in calls:
        parts = ("EVALSHA", script.sha, str(len(keys)), *keys, *arguments)
        out.append(f"*{len(parts)}\r\n")
        out += [
            f"${len(part) if part.isascii() else len(part.encode())}\r\n{part}\r\n"
            for part in parts
        ]
    return "".join(out).encode()


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
