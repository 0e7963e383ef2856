"""Events from Redis forwarded as text: the node puts the published JSON into its frames as it is.

A job event published by the merge script (or ``RedisPublisher``) reaches the fan-out as
``EventText``; only a listener or a socket on the queued path makes it decode the text. These
tests check the split of a published message, the packet built from the text, that a node whose
sockets are ready decodes nothing (and that a backed-up one does, once per event), and that
order holds on mixed paths for events that arrive this way.
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest
import redis.asyncio as aioredis
from socketio import packet
from tidings import Settings
from tidings.constants import job_channel, user_channel
from tidings.realtime import fanout
from tidings.realtime.fanout import EventText, event_packet
from tidings.realtime.manager import split_message
from tidings.store.base import dump
from tidings.web.keys import FANOUT

from tests.support import Watcher, check_burst, eventually, redis_worker, running_app

EVENTS = 120
HIGH_WATER = fanout.HIGH_WATER


async def test_the_merge_scripts_message_splits_into_its_event_and_data_text(
    redis_url: str,
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    await pubsub.subscribe(user_channel("ann"))  # the script publishes the same text there
    async with redis_worker(redis_url) as emitter:
        event = await emitter.send_progress("split", "extracting", 40, owner="ann", extra={"é": 1})
        message = None
        async with asyncio.timeout(10):
            while message is None:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1)
    await pubsub.aclose()
    await client.aclose()
    text = message["data"].decode()
    name, data = split_message(text)
    assert name == "job_update" and isinstance(data, EventText)
    assert json.loads(data.text) == json.loads(text)["data"] == event
    assert data.value == event  # decoded on demand, to the same object


def test_other_shapes_are_decoded_and_malformed_ones_refused() -> None:
    data = {"job_id": "j", "seq": 1}
    published = dump({"event": "job_update", "data": data})  # RedisPublisher's text
    assert split_message(published)[1].text == dump(data)
    for other in (
        json.dumps({"event": "job_update", "data": data}),  # spaces: not the compact form
        dump({"data": data, "event": "job_update"}),  # event not first
    ):
        name, value = split_message(other)
        assert name == "job_update" and value == data
    assert split_message(dump({"event": "other", "data": data})) == ("other", data)
    for malformed in ("{", "[]", '{"event":"job_update"}', dump({"data": data})):
        with pytest.raises((ValueError, KeyError, TypeError)):
            split_message(malformed)


@pytest.mark.parametrize("namespace", ["/", "/other"])
def test_the_packet_built_from_text_is_the_one_socketio_encodes(namespace: str) -> None:
    data = {"job_id": "j", "seq": 3, "progress": 0.5, "extra": {"a": [1, None]}}
    expected = packet.Packet(packet.EVENT, namespace=namespace, data=["job_update", data])
    assert event_packet(namespace, "job_update", dump(data)) == expected.encode()


@pytest.mark.parametrize("backed_up", [False, True], ids=["ready", "control"])
async def test_a_node_forwards_what_redis_carries_without_decoding_it(
    backed_up: bool, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoded: list[str] = []
    decode = fanout.EventText.value.fget
    assert decode is not None
    monkeypatch.setattr(
        fanout.EventText, "value", property(lambda self: decoded.append(self.text) or decode(self))
    )
    if backed_up:  # the control: sockets on the queued path need the object (job_batch)
        monkeypatch.setattr(fanout, "HIGH_WATER", -1)
    async with (
        running_app(Settings(redis_url=redis_url)) as (url, app),
        redis_worker(redis_url) as emitter,
    ):
        await emitter.send_progress("fwd", "extracting", 0)
        watchers = [await Watcher(url).connect() for _ in range(3)]
        for watcher in watchers:
            await watcher.subscribe("fwd")
        sent = [await emitter.send_progress("fwd", "extracting", step) for step in range(1, 6)]
        for watcher in watchers:
            await eventually(lambda w=watcher: w.seqs("fwd")[-1:] == [6], what="the events")
        manager = app[FANOUT]
        direct, queued = manager.direct, manager.queued
        for watcher in watchers:
            await watcher.close()
    for watcher in watchers:
        assert watcher.received == sent and watcher.resubscribes == 0
    if backed_up:
        assert queued == 15 and len(decoded) == 5  # once per event, not once per socket
    else:
        assert direct == 15 and decoded == []


@pytest.mark.parametrize("guarded", [True, False], ids=["ordered", "control"])
async def test_events_from_redis_keep_their_order_on_mixed_paths(
    guarded: bool, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not guarded:
        # The fault: a socket with packets still queued counts as ready for a direct write.
        monkeypatch.setattr(fanout, "writer_idle", lambda socket: True)
    async with (
        running_app(Settings(redis_url=redis_url)) as (url, app),
        redis_worker(redis_url) as emitter,
    ):
        first = await emitter.send_progress("mixed", "extracting", 0)
        assert first is not None
        watchers = [await Watcher(url, catch_up=False).connect() for _ in range(3)]
        for watcher in watchers:
            await watcher.subscribe("mixed")
        manager = app[FANOUT]
        before = (manager.direct, manager.queued)
        deliver = manager.deliver
        switching = random.Random(7)

        async def switched(*args: Any, **kwargs: Any) -> None:
            # Sockets change paths between two events of one burst.
            monkeypatch.setattr(fanout, "HIGH_WATER", switching.choice([-1, HIGH_WATER]))
            await deliver(*args, **kwargs)

        monkeypatch.setattr(manager, "deliver", switched)
        client = aioredis.Redis.from_url(redis_url)
        async with client.pipeline(transaction=False) as pipe:  # one burst, as Redis sends it
            for seq in range(2, EVENTS + 1):
                message = dump({"event": "job_update", "data": {**first, "seq": seq}})
                pipe.execute_command("SPUBLISH", job_channel("mixed"), message)
            await pipe.execute()
        await client.aclose()
        await check_burst(watchers, manager, before, EVENTS, guarded=guarded)
