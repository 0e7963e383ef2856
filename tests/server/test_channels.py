"""Per-job channels: a node hears only what its clients watch, and joins before it reads.

Two in-process nodes share the test's Redis; the worker is a separate emitter writing straight
to Redis, whose merge script publishes each update on the job's shard channel.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tidings import Settings
from tidings.constants import job_channel, job_room, user_channel
from tidings.realtime.manager import RedisManager
from tidings.web.keys import FANOUT

from tests.relay import Link, RedisRelay
from tests.support import Watcher, eventually, redis_worker, running_app


def manager_of(app: Any) -> RedisManager:
    manager = app[FANOUT]
    assert isinstance(manager, RedisManager)
    return manager


async def test_a_node_hears_only_the_jobs_its_clients_watch(redis_url: str) -> None:
    config = Settings(redis_url=redis_url)
    async with (
        running_app(config) as (url_a, app_a),
        running_app(config) as (_, app_b),
        redis_worker(redis_url) as emitter,
    ):
        a, b = manager_of(app_a), manager_of(app_b)
        watcher = await Watcher(url_a).connect()
        await watcher.subscribe("watched")
        for progress in range(1, 6):
            await emitter.send_progress("watched", "extracting", progress)
        await eventually(lambda: watcher.seqs("watched") == [1, 2, 3, 4, 5], what="five events")
        # Redis delivers one connection's messages in publish order: once B hears a later
        # message on a channel it does watch, nothing of the earlier ones is still on its way.
        await b.watch(job_room("marker"))
        await emitter.send_progress("marker", "extracting", 1)
        await eventually(lambda: b.heard[job_channel("marker")] == 1, what="the marker")
        assert a.heard[job_channel("watched")] == 5
        assert b.heard[job_channel("watched")] == 0

        # The control: the same updates reach B once it subscribes, so the count would show them.
        await b.watch(job_room("watched"))
        for progress in range(6, 9):
            await emitter.send_progress("watched", "extracting", progress)
        await eventually(lambda: b.heard[job_channel("watched")] == 3, what="B hearing them")

        # The last watcher leaving unsubscribes A. A's next subscription is confirmed after
        # Redis took the unsubscribe (one connection, in order); its marker comes after the
        # ninth update, so once A hears the marker the ninth would have arrived before it.
        await watcher.call("unsubscribe", {"job_id": "watched"})
        await a.watch(job_room("marker-a"))
        await emitter.send_progress("watched", "extracting", 9)
        await emitter.send_progress("marker-a", "extracting", 1)
        await eventually(lambda: a.heard[job_channel("marker-a")] == 1, what="A's marker")
        assert a.heard[job_channel("watched")] == 5 + 3
        await eventually(lambda: b.heard[job_channel("watched")] == 4, what="B hearing the ninth")
        await watcher.close()


async def test_a_socket_in_the_job_room_and_its_owners_room_gets_each_event_once(
    redis_url: str,
) -> None:
    async with (
        running_app(Settings(redis_url=redis_url)) as (url, app),
        redis_worker(redis_url) as emitter,
    ):
        owner = await Watcher(url, {"user_id": "olga"}).connect()  # in user:olga from the start
        await emitter.send_progress("mine", "extracting", 1, owner="olga")
        await owner.subscribe("mine")  # now in job:mine too
        for progress in range(2, 6):
            await emitter.send_progress("mine", "extracting", progress)
        await eventually(lambda: owner.seqs("mine")[-1:] == [5], what="the fifth event")
        manager = manager_of(app)
        await eventually(lambda: manager.heard[user_channel("olga")] == 5, what="the user channel")
        # The control: both channels carried every event, yet the socket received each once.
        assert manager.heard[job_channel("mine")] == 4
        assert [event["seq"] for event in owner.received] == [1, 2, 3, 4, 5]
        await owner.close()


class HeldSubscriptions(RedisRelay):
    """A TCP relay in front of Redis that holds SSUBSCRIBE commands on their way to Redis until
    ``release``: the window between a node asking for a job's channel and Redis subscribing it."""

    def __init__(self, redis_port: int) -> None:
        super().__init__(redis_port)
        self.holding = False
        self.held = asyncio.Event()
        self._released = asyncio.Event()

    def release(self) -> None:
        self.holding = False
        self._released.set()

    async def passes(self, chunk: bytes, link: Link, *, to_redis: bool) -> bool:
        if to_redis and self.holding and b"SSUBSCRIBE" in chunk.upper():
            self.held.set()
            await self._released.wait()
        return True


@pytest.mark.parametrize("confirmed", [True, False], ids=["join-then-read", "control"])
async def test_the_subscription_is_confirmed_before_the_subscribers_read(
    redis_server: Any, redis_url: str, confirmed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An update published while Redis has not yet subscribed the node is in the read, so
    nothing is lost. The control reads as soon as the subscription is asked for: that update
    is neither in the read nor heard, and the client never learns of it."""
    hurried: list[asyncio.Task[None]] = []
    if not confirmed:
        original = RedisManager.watch

        async def ask_only(self: RedisManager, room: Any) -> None:
            hurried.append(asyncio.create_task(original(self, room)))

        monkeypatch.setattr(RedisManager, "watch", ask_only)
    relay = await HeldSubscriptions(redis_server.port).start()
    try:
        async with (
            running_app(Settings(redis_url=relay.url)) as (url, app),
            redis_worker(redis_url) as emitter,
        ):
            await emitter.send_progress("race", "extracting", 1)
            watcher = await Watcher(url, catch_up=False).connect()
            relay.holding = True
            subscribing = asyncio.create_task(watcher.subscribe("race"))
            await relay.held.wait()
            if not confirmed:
                await subscribing  # the control has read already
            await emitter.send_progress("race", "extracting", 2)  # not yet subscribed in Redis
            relay.release()
            ack = await subscribing
            manager = manager_of(app)
            await eventually(lambda: manager.subscribed(job_room("race")), what="subscribed")
            await emitter.send_progress("race", "extracting", 3)
            await eventually(lambda: watcher.received, what="the live event")
            await asyncio.gather(*hurried)
            await watcher.close()
    finally:
        await relay.stop()
    assert [event["seq"] for event in watcher.received] == [3]
    if confirmed:
        assert ack["job"]["seq"] == 2  # read after the subscription: seq 2 is in the snapshot
    else:
        assert ack["job"]["seq"] == 1  # read before it: seq 2 is nowhere, a hole the client
