"""tidings on a real Redis Cluster: nodes and workers given the URL of any one cluster node.

The cluster is started here (three masters; three replicas more for the failover), joined with
``redis-cli --cluster create``. Jobs are chosen so that their slots land on every master.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis
from redis.exceptions import ResponseError
from tidings.constants import job_channel

from tests.cluster.conftest import running_nodes
from tests.cluster.parts import RoamingWatcher, Worker, collect_stream, until
from tests.cluster.redis_cluster import RedisClusterProcesses
from tests.support import ServerProcess, Watcher, eventually, http_json

UPDATES = 25


@pytest.fixture
async def nodes(
    cluster: RedisClusterProcesses, tmp_path: Path
) -> AsyncIterator[tuple[ServerProcess, ...]]:
    """Two nodes, each given the URL of a different cluster node."""
    urls = [server.url for server in cluster.servers[:2]]
    async with running_nodes(tmp_path, *({"TIDINGS_REDIS_URL": url} for url in urls)) as running:
        yield running


class ShardListener:
    """A raw subscriber of some jobs' channels on one server, as a node that ignored the
    cluster would subscribe: what it hears, by job."""

    def __init__(self, port: int, jobs: list[str], *, sharded: bool) -> None:
        self.client = aioredis.Redis(port=port, decode_responses=True)
        self.jobs = jobs
        self.sharded = sharded
        self.heard: dict[str, list[int]] = {job: [] for job in jobs}
        self.taken: list[str] = []  # channels Redis unsubscribed (their slot moved)
        self.error: Exception | None = None
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def start(self) -> ShardListener:
        self._task = asyncio.create_task(self._listen())
        await asyncio.wait_for(self._subscribed.wait(), 10)
        return self

    async def _listen(self) -> None:
        connection = self.client.connection_pool.make_connection()
        try:
            await connection.connect()
            command = "SSUBSCRIBE" if self.sharded else "SUBSCRIBE"
            for job in self.jobs:
                await connection.send_command(command, job_channel(job))
            for _ in self.jobs:
                await connection.read_response(push_request=True)
            self._subscribed.set()
            while True:
                reply = await connection.read_response(push_request=True)
                if reply[0] == "sunsubscribe":
                    self.taken.append(reply[1])
                    continue
                event = json.loads(reply[2])["data"]
                self.heard[event["job_id"]].append(event["seq"])
        except Exception as exc:
            self.error = exc
            self._subscribed.set()
        finally:
            await connection.disconnect()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.client.aclose()


async def test_jobs_on_every_master_reach_clients_on_both_nodes_once_and_in_order(
    cluster: RedisClusterProcesses, nodes: tuple[ServerProcess, ...], tmp_path: Path
) -> None:
    a, b = nodes
    jobs = cluster.one_job_per_master("spread")
    assert len({cluster.master_of(job_channel(job)).port for job in jobs}) == 3
    workers = [
        Worker(cluster.servers[2].url, job, UPDATES, tmp_path / f"{job}.acked", 0.01, "olga")
        for job in jobs
    ]
    # On A, the owner watches each job (and is in her room); on B, a stranger watches each job
    # and the owner only her room: her events there come from the owner's channel alone.
    watching = [Watcher(a.url, {"user_id": "olga"}), Watcher(b.url)]
    owner_only = Watcher(b.url, {"user_id": "olga"})
    # The control: a node subscribed as on a single Redis, on the node its URL names, hears
    # nothing of the jobs of the other masters (SPUBLISH stays on the job's shard).
    naive = ShardListener(cluster.servers[0].port, jobs, sharded=False)
    stream: asyncio.Task[None] | None = None
    try:
        for watcher in [*watching, owner_only]:
            await watcher.connect()
        await naive.start()
        for watcher in watching:
            for job in jobs:
                assert (await watcher.subscribe(job))["ok"]
        for worker in workers:
            await worker.start()
        # And an SSE stream on B of the first job, from the snapshot on: SSE parity.
        await eventually(lambda: watching[1].seqs(jobs[0]), what="the first job made")
        streamed: list[tuple[str, dict[str, Any]]] = []
        stream = asyncio.create_task(collect_stream(f"{b.url}/api/jobs/{jobs[0]}/stream", streamed))
        for worker in workers:
            assert (await worker.finish())["errors"] == 0
        async with asyncio.timeout(20):
            await stream  # it ends after the terminal event
        assert streamed[0][0] == "snapshot"
        first = streamed[0][1]["seq"]
        assert [data["seq"] for _, data in streamed] == list(range(first, UPDATES + 1))
        assert streamed[-1][0] == "job_complete"
        for watcher in [*watching, owner_only]:
            for job in jobs:
                await eventually(
                    lambda w=watcher, j=job: (
                        [e["seq"] for e in w.received if e["job_id"] == j]
                        == list(range(1, UPDATES + 1))
                    ),
                    what=f"every event of {job} once, in order, on {watcher.url}",
                )
            assert watcher.resubscribes == 0 and watcher.disconnects == []
        for job, worker in zip(jobs, workers, strict=True):
            status, snapshot = await http_json("GET", f"{b.url}/api/jobs/{job}")
            assert status == 200
            assert (snapshot["seq"], snapshot["status"]) == (UPDATES, "done")
            assert snapshot["owner"] == "olga"
            rows = [ack["row"] for ack in worker.acked()]
            assert rows == list(range(1, UPDATES + 1))
        listed = await owner_only.call("list_jobs", {})
        assert sorted(job["job_id"] for job in listed["jobs"]) == sorted(jobs)
        assert naive.error is None
        assert sum(len(seqs) for seqs in naive.heard.values()) == 0
        with pytest.raises(ResponseError, match="MOVED"):
            wrong = next(m for m in cluster.masters() if m.port != cluster.servers[0].port)
            with redis.Redis(port=wrong.port) as client:
                foreign = next(j for j in jobs if cluster.master_of(job_channel(j)) != wrong)
                client.execute_command("SSUBSCRIBE", job_channel(foreign))
    finally:
        if stream is not None:
            stream.cancel()
        await naive.stop()
        for worker in workers:
            await worker.stop()
        for watcher in [*watching, owner_only]:
            await watcher.close()


def shard_subscribers(cluster: RedisClusterProcesses, job: str) -> dict[int, int]:
    """``PUBSUB SHARDNUMSUB`` of the job's channel on each master, by port."""
    counts = {}
    for master in cluster.masters():
        with redis.Redis(port=master.port) as client:
            reply = client.execute_command("PUBSUB", "SHARDNUMSUB", job_channel(job))
            counts[master.port] = int(reply[1])
    return counts


async def test_a_node_subscribes_a_job_only_on_the_master_that_owns_it(
    cluster: RedisClusterProcesses, tmp_path: Path
) -> None:
    first, second = cluster.one_job_per_master("own")[:2]
    owner = cluster.master_of(job_channel(first)).port
    async with running_nodes(tmp_path, {"TIDINGS_REDIS_URL": cluster.url}) as (node,):
        watcher = await Watcher(node.url).connect()
        try:
            assert shard_subscribers(cluster, first) == {
                master.port: 0 for master in cluster.masters()
            }
            assert (await watcher.subscribe(first))["ok"]
            counts = shard_subscribers(cluster, first)
            assert counts.pop(owner) == 1
            assert set(counts.values()) == {0}
            # The control: a job of another master is subscribed there, not on the first's.
            assert (await watcher.subscribe(second))["ok"]
            other = cluster.master_of(job_channel(second)).port
            assert other != owner
            assert shard_subscribers(cluster, second)[other] == 1
            assert shard_subscribers(cluster, second)[owner] == 0
            assert (await watcher.call("unsubscribe", {"job_id": first}))["ok"]
            await until(lambda: _zero(cluster, first), what="the first job's channel unsubscribed")
        finally:
            await watcher.close()


async def _zero(cluster: RedisClusterProcesses, job: str) -> bool:
    return set(shard_subscribers(cluster, job).values()) == {0}


@pytest.fixture
def replicated_cluster(tmp_path: Path) -> Iterator[RedisClusterProcesses]:
    """Three masters with a replica each; a test may kill a master."""
    (tmp_path / "replicated").mkdir()
    processes = RedisClusterProcesses(tmp_path / "replicated", replicas=1)
    try:
        yield processes.start()
    finally:
        processes.stop()


async def test_a_master_killed_mid_job_fails_over_and_the_client_catches_up(
    replicated_cluster: RedisClusterProcesses, tmp_path: Path
) -> None:
    cluster = replicated_cluster
    count = 150  # 7.5 s of updates: the kill falls well within the job
    job = cluster.one_job_per_master("failover")[0]
    master = cluster.master_of(job_channel(job))
    url = next(server.url for server in cluster.servers if server is not master)
    async with running_nodes(tmp_path, {"TIDINGS_REDIS_URL": url}) as (node,):
        watcher = await RoamingWatcher([node.url]).connect()
        # The control: a subscription that stays on the master it started on, as a node that
        # never looked at the cluster's slot table again would.
        stale = await ShardListener(master.port, [job], sharded=True).start()
        worker = Worker(url, job, count, tmp_path / "acked", 0.05)
        try:
            assert (await watcher.subscribe(job))["ok"]
            await worker.start()
            await eventually(lambda: len(watcher.seqs(job)) >= 10, within=30, what="10 events")
            await until(lambda: _true(cluster.replicated(master)), what="the replica in sync")
            master.crash()
            killed_at = max(watcher.seqs(job))
            assert killed_at < count, "the job ended before its master was killed"
            await until(
                lambda: _true(cluster.master_of(job_channel(job)) is not master),
                what="a replica promoted",
            )
            summary = await worker.finish()
            await eventually(
                lambda: watcher.seqs(job) == list(range(1, count + 1)),
                within=30,
                what="every seq, caught up",
            )
            status, snapshot = await http_json("GET", f"{node.url}/api/jobs/{job}")
            assert status == 200
            query = f"epoch={snapshot['epoch']}&since=0"
            status, history = await http_json("GET", f"{node.url}/api/jobs/{job}/events?{query}")
            assert status == 200 and history["recovered"]
        finally:
            await stale.stop()
            await worker.stop()
            await watcher.close()
    # Every update exactly once, each the one the worker was told was stored.
    rows = {ack["seq"]: ack["row"] for ack in worker.acked()}
    assert rows == {seq: seq for seq in range(1, count + 1)}
    events = history["events"]
    assert [event["seq"] for event in events] == list(range(1, count + 1))
    assert [event["extra"]["row"] for event in events[:-1]] == list(range(1, count))
    # The emitter's own retries rode out the failover: the worker never saw a refusal.
    assert summary["errors"] == 0
    # The node lost its subscription with the master, so it had its clients catch up.
    assert watcher.reconnects >= 1
    assert stale.heard[job] and stale.heard[job][-1] < count


async def test_a_watched_jobs_slot_moved_mid_job_is_followed_to_its_new_master(
    cluster: RedisClusterProcesses, tmp_path: Path
) -> None:
    count = 100  # 5 s of updates: the move falls well within the job
    moving, staying = cluster.one_job_per_master("moving")[:2]
    source = cluster.master_of(job_channel(moving))
    target = cluster.master_of(job_channel(staying))
    async with running_nodes(tmp_path, {"TIDINGS_REDIS_URL": cluster.url}) as (node,):
        watcher = await RoamingWatcher([node.url]).connect()
        # The control: a subscription on the old owner, which Redis unsubscribes when the slot
        # leaves it and which hears nothing of the job after that.
        stale = await ShardListener(source.port, [moving], sharded=True).start()
        worker = Worker(cluster.url, moving, count, tmp_path / "acked", 0.05)
        try:
            for job in (moving, staying):
                assert (await watcher.subscribe(job))["ok"]
            await worker.start()
            await eventually(lambda: len(watcher.seqs(moving)) >= 10, within=30, what="10 events")
            await asyncio.to_thread(cluster.move_slot, job_channel(moving), target)
            moved_at = max(watcher.seqs(moving))
            assert moved_at < count, "the job ended before its slot moved"
            summary = await worker.finish()
            await eventually(
                lambda: watcher.seqs(moving) == list(range(1, count + 1)),
                within=30,
                what="every seq on the new master",
            )
            await until(
                lambda: _true(shard_subscribers(cluster, moving)[target.port] == 1),
                what="the job subscribed on its new master",
            )
            assert shard_subscribers(cluster, moving)[source.port] == 0
        finally:
            await stale.stop()
            await worker.stop()
            await watcher.close()
    assert summary["errors"] == 0
    assert [ack["row"] for ack in worker.acked()] == list(range(1, count + 1))
    assert stale.taken == [job_channel(moving)]
    assert stale.heard[moving] and stale.heard[moving][-1] < count


async def _true(value: bool) -> bool:
    return value
