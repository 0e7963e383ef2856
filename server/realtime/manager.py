"""Many nodes, one Redis: a node hears the channels of the jobs its clients watch, and no others.

The merge script publishes every stored update on the job's shard channel (``SPUBLISH``) and,
when the job has an owner, on the owner's channel (``PUBLISH``); see ``constants``. What this
manager adds to the local ``FanoutManager``, and why:

- Subscriptions follow the watchers. The first local watcher of a room (a socket joining
  ``job:<id>`` or ``user:<sub>``, or an SSE stream listening to it) subscribes the node to the
  room's channel; the last one leaving unsubscribes it. A node with no watcher of a job hears
  none of its messages, so the cost of a job is paid only where someone watches it.
- Join, then read. ``enter_room`` and ``listen`` return only once Redis has confirmed the
  subscription: whatever is published after the watcher's snapshot read is heard, whatever was
  published before is in the read (the client drops a repeat by ``seq``).
- What arrives is delivered to the local room only, never published again. A socket in both
  the job's room and its owner's room gets the event once, from the job's channel.
- One subscription connection of its own, made again with capped exponential backoff after any
  failure, re-subscribing every channel the node needs.
- A probe, published every ``probe_interval`` seconds on a channel of this node's own. A
  subscription can stay connected yet stop receiving (a proxy or failover dropped it); when
  nothing at all has been heard for three intervals it is made afresh. ``listening`` is false
  until it hears again, and ``/readyz`` reports that.
- Catch-up after a gap. Events published while a node was not subscribed never reached it, and
  its clients cannot tell what they missed. So when a new subscription hears its first message,
  the node closes its Socket.IO connections at the transport (clients reconnect and re-subscribe
  with ``epoch`` and ``since``, as after a node's death) and tells its room listeners (SSE
  streams) to catch up from the store.

The connection is redis-py's own (parsing, AUTH and TLS from the URL), driven directly: redis-py
5's asyncio ``PubSub`` knows no shard channels.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import secrets
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection, ConnectionPool
from tidings.constants import NAMESPACE, job_room, probe_channel, room_channel
from tidings.errors import StoreUnavailable
from tidings.realtime.connections import close_all
from tidings.realtime.fanout import JOB_EVENTS, EventText, FanoutManager, plain

logger = logging.getLogger(__name__)

#: Silent probe intervals after which a subscription counts as deaf.
DEAF_AFTER = 3
#: Longest wait between attempts to subscribe (python-socketio's own cap).
MAX_BACKOFF = 60.0
#: Bound on closing connections after a gap: a peer that is gone may never answer.
CLOSE_TIMEOUT = 3.0
#: Bound on waiting at startup for a subscription that neither hears nor fails.
START_TIMEOUT = 5.0
#: Bound on waiting for Redis to confirm a room's subscription before a watcher's read.
CONFIRM_TIMEOUT = 5.0

_CONFIRMS = frozenset({"subscribe", "ssubscribe"})
_MESSAGES = frozenset({"message", "smessage"})


@dataclass(eq=False, slots=True)
class _Channel:
    """A channel the node needs, for one room; ``confirmed`` once Redis said so."""

    name: str
    room: str
    sharded: bool
    confirmed: asyncio.Event = field(default_factory=asyncio.Event)

    def subscribe(self) -> tuple[str, str]:
        return ("SSUBSCRIBE" if self.sharded else "SUBSCRIBE", self.name)

    def unsubscribe(self) -> tuple[str, str]:
        return ("SUNSUBSCRIBE" if self.sharded else "UNSUBSCRIBE", self.name)


class RedisManager(FanoutManager):
    """The local fan-out, fed by the Redis channels of the rooms it has watchers in."""

    def __init__(self, url: str, *, probe_interval: float = 5.0) -> None:
        super().__init__()
        self.url = url
        self.probe_interval = probe_interval
        self.node_id = secrets.token_urlsafe(9)
        self.probe = probe_channel(self.node_id)
        self.last_heard = -math.inf
        self.resubscribes = 0
        #: Messages heard, by channel (the probe's included): what this node pays for.
        self.heard: Counter[str] = Counter()
        self._channels: dict[str, _Channel] = {}
        #: Per channel, the subscriptions sent and not yet confirmed, in the order sent.
        self._unconfirmed: dict[str, deque[_Channel]] = {}
        self._outbox: asyncio.Queue[tuple[str, str]] | None = None
        self._listener_started = time.monotonic()
        self._fresh = False  # a subscription that has not yet heard anything
        self._settled = asyncio.Event()  # the first subscription heard, or failed
        self._client: aioredis.Redis | None = None
        self._listener: asyncio.Task[None] | None = None
        self._probe: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribe when the node starts, and wait until the subscription hears or fails: a
        client that connected before it might miss events."""
        self._client = aioredis.Redis.from_url(self.url, socket_timeout=5, socket_connect_timeout=5)
        self._listener_started = time.monotonic()
        self._listener = asyncio.create_task(self._listen_forever())
        self._probe = asyncio.create_task(self._probe_forever())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(START_TIMEOUT):
                await self._settled.wait()

    # Watchers: sockets in rooms, and the fan-out's listeners.

    async def enter_room(
        self, sid: str, namespace: str, room: Any, eio_sid: str | None = None
    ) -> None:
        self.basic_enter_room(sid, namespace, room, eio_sid=eio_sid)
        try:
            await self.watch(room)
        except StoreUnavailable:
            self.basic_leave_room(sid, namespace, room)
            raise

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        super().basic_leave_room(sid, namespace, room)  # every way out of a room comes here
        self.unwatch(room)

    def _watched(self, room: str) -> bool:
        return room in self.rooms.get(NAMESPACE, {}) or room in self._listeners

    async def watch(self, room: Any) -> None:
        """Return once the room's channel is subscribed and confirmed; StoreUnavailable when
        Redis does not confirm in time (the watcher's read would not be safe)."""
        target = room_channel(room) if isinstance(room, str) else None
        if target is None:
            return
        channel = self._channels.get(target[0])
        if channel is None:
            channel = self._channels[target[0]] = _Channel(target[0], room, target[1])
            self._send_subscribe(channel)
        try:
            async with asyncio.timeout(CONFIRM_TIMEOUT):
                await channel.confirmed.wait()
        except TimeoutError:
            raise StoreUnavailable(
                "This node could not subscribe to the job's events in Redis; try again shortly."
            ) from None

    def subscribed(self, room: str) -> bool:
        """Redis has confirmed the room's channel on this node's subscription."""
        target = room_channel(room)
        channel = self._channels.get(target[0]) if target is not None else None
        return channel is not None and channel.confirmed.is_set()

    def unwatch(self, room: Any) -> None:
        target = room_channel(room) if isinstance(room, str) else None
        if target is None or self._watched(room):
            return
        channel = self._channels.pop(target[0], None)
        if channel is not None and self._outbox is not None:
            self._outbox.put_nowait(channel.unsubscribe())

    def _send_subscribe(self, channel: _Channel) -> None:
        """Queue the command, noting it in send order: Redis confirms in that order, so an
        old confirmation (of a channel left and watched again) never confirms a newer one."""
        if self._outbox is None:
            return  # not connected: the next subscription subscribes every needed channel
        self._unconfirmed.setdefault(channel.name, deque()).append(channel)
        self._outbox.put_nowait(channel.subscribe())

    # The subscription.

    async def _listen_forever(self) -> None:
        """Subscribe, and again after any failure, with capped exponential backoff."""
        backoff = 1.0
        while True:
            heard = self.last_heard
            try:
                await self._subscription()
            except Exception as exc:
                self._settled.set()
                if self.last_heard > heard:
                    backoff = 1.0  # it worked for a while: start over from short waits
                logger.warning(
                    "Redis subscription failed (%s); subscribing again in %.0f s", exc, backoff
                )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _subscription(self) -> None:
        """One connection: subscribe to every needed channel, then hear until it fails."""
        pool: ConnectionPool = ConnectionPool.from_url(
            self.url, decode_responses=True, socket_connect_timeout=5
        )
        connection: AbstractConnection = pool.make_connection()  # type: ignore[no-untyped-call]
        outbox: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        writer: asyncio.Task[None] | None = None
        try:
            await connection.connect()  # type: ignore[no-untyped-call]
            for channel in self._channels.values():
                channel.confirmed.clear()
            self._unconfirmed.clear()
            self._outbox = outbox
            outbox.put_nowait(("SUBSCRIBE", self.probe))
            for channel in list(self._channels.values()):
                self._send_subscribe(channel)
            writer = asyncio.create_task(self._write(connection, outbox))
            self._fresh = True
            await self._send_probe()  # a working subscription hears something at once
            while True:
                reply = await connection.read_response(push_request=True)
                if writer.done():
                    writer.result()  # a failed write ends this subscription
                await self._hear(reply)
        finally:
            if self._outbox is outbox:
                self._outbox = None
                for channel in self._channels.values():
                    channel.confirmed.clear()  # a watcher arriving now waits for the next one
            if writer is not None:
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await writer
            with contextlib.suppress(Exception):
                await connection.disconnect()
            with contextlib.suppress(Exception):
                await pool.disconnect()

    @staticmethod
    async def _write(
        connection: AbstractConnection, outbox: asyncio.Queue[tuple[str, str]]
    ) -> None:
        while True:
            await connection.send_command(*await outbox.get(), check_health=False)

    async def _hear(self, reply: Any) -> None:
        self.last_heard = time.monotonic()
        self._settled.set()
        if self._fresh:
            self._fresh = False
            await self._catch_up_clients()
        if not isinstance(reply, list) or len(reply) < 3:
            return
        kind, name, data = reply[0], reply[1], reply[2]
        if kind in _CONFIRMS:
            waiting = self._unconfirmed.get(name)
            if waiting:
                waiting.popleft().confirmed.set()
                if not waiting:
                    del self._unconfirmed[name]
            return
        if kind not in _MESSAGES:
            return
        self.heard[name] += 1
        channel = self._channels.get(name)
        if channel is None:
            return  # the probe, or a channel left since
        try:
            event, payload = split_message(data)
            besides = None
            if not channel.sharded:
                # The owner's channel: who watches the job itself has it from the job's channel.
                value = plain(payload)
                job = value.get("job_id") if isinstance(value, dict) else None
                if isinstance(job, str):
                    besides = job_room(job)
        except (ValueError, KeyError, TypeError):
            logger.warning("ignored a malformed message on %s", name)
            return
        await self.deliver(event, payload, channel.room, besides=besides)

    async def _catch_up_clients(self) -> None:
        """Make this node's clients fill what it may have missed before this subscription."""
        for listeners in self._listeners.values():
            for listener in listeners:
                listener.overflowed = True
        eio = self.server.eio
        if not eio.sockets:
            return
        logger.warning(
            "subscribed to Redis again: closing %d connections so their clients catch up",
            len(eio.sockets),
        )
        await close_all(eio, CLOSE_TIMEOUT)

    @property
    def listening(self) -> bool:
        """Heard something (at least its own probe) lately."""
        return time.monotonic() - self.last_heard < DEAF_AFTER * self.probe_interval

    async def _send_probe(self) -> None:
        # A failed publish is only logged: the silence that follows tells.
        if self._client is None:
            return
        try:
            await self._client.publish(self.probe, "probe")
        except Exception as exc:
            logger.warning("could not publish the subscription probe: %s", exc)

    async def _probe_forever(self) -> None:
        while True:
            await asyncio.sleep(self.probe_interval)
            await self._send_probe()
            silent_since = max(self.last_heard, self._listener_started)
            if time.monotonic() - silent_since >= DEAF_AFTER * self.probe_interval:
                logger.warning(
                    "Redis subscription heard nothing for %.1f s; subscribing again",
                    time.monotonic() - silent_since,
                )
                await self.restart_listener()

    async def restart_listener(self) -> None:
        self.resubscribes += 1
        await self._stop(self._listener)
        self._listener_started = time.monotonic()
        self._listener = asyncio.create_task(self._listen_forever())

    @staticmethod
    async def _stop(task: asyncio.Task[None] | None) -> None:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def aclose(self) -> None:
        await self._stop(self._probe)
        await self._stop(self._listener)
        self._probe = self._listener = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None


_EVENT_HEAD = '{"event":"'
_DATA_HEAD = '","data":'


def split_message(message: str) -> tuple[str, Any]:
    """(event, data) of a published ``{"event": ..., "data": ...}``; ValueError, KeyError or
    TypeError when it is none. A job event, as the merge script and ``RedisPublisher`` write
    it (compact, ``event`` first), keeps its data as text (``EventText``): the fan-out
    forwards it without decoding it."""
    if message.startswith(_EVENT_HEAD) and message.endswith("}"):
        end = message.find(_DATA_HEAD, len(_EVENT_HEAD))
        event = message[len(_EVENT_HEAD) : end]
        if end > 0 and event in JOB_EVENTS:
            return event, EventText(message[end + len(_DATA_HEAD) : -1])
    decoded = json.loads(message)
    return decoded["event"], decoded["data"]
