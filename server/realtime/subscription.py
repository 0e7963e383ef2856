"""One Redis subscription connection (``Link``) and the channels a node needs (``Channel``).

``RedisManager`` keeps one link on a single Redis, and one per master it needs on a Redis
Cluster (a shard channel can only be subscribed on the master that owns its slot). A link lives
for one connection: it subscribes the channels assigned to it, hears until the connection fails,
Redis takes a channel from it (its slot moved) or the manager ends it, and reports each of
these to its ``Owner``, which arranges a new one.

The connection is redis-py's own (parsing, AUTH and TLS from the URL), driven directly: redis-py
5's asyncio ``PubSub`` knows no shard channels.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from redis.asyncio.connection import AbstractConnection, ConnectionPool

#: Where a link connects: a cluster master's (host, port), or None for the URL's own Redis.
Address = tuple[str, int] | None

_MESSAGES = frozenset({"message", "smessage"})
_CONFIRMS = frozenset({"subscribe", "ssubscribe"})
_ENDS = frozenset({"unsubscribe", "sunsubscribe"})


@dataclass(eq=False, slots=True)
class Channel:
    """A channel the node needs, for one room; ``confirmed`` once Redis said so on its
    current ``link``."""

    name: str
    room: str
    sharded: bool
    confirmed: asyncio.Event = field(default_factory=asyncio.Event)
    link: Link | None = None

    def subscribe(self) -> tuple[str, str]:
        return ("SSUBSCRIBE" if self.sharded else "SUBSCRIBE", self.name)

    def unsubscribe(self) -> tuple[str, str]:
        return ("SUNSUBSCRIBE" if self.sharded else "UNSUBSCRIBE", self.name)


class Owner(Protocol):
    """What a link tells its manager."""

    async def message(self, link: Link, name: str, data: Any) -> None: ...

    async def answered(self, link: Link) -> None:
        """Redis answered a command of the link's (the first answer: the link works)."""

    def taken(self, link: Link, name: str) -> None:
        """Redis unsubscribed a channel nobody asked to leave (its slot moved)."""

    def ended(self, link: Link, error: BaseException) -> None: ...


class Link:
    """One subscription connection; its ``probe`` channel is subscribed first, always."""

    def __init__(self, owner: Owner, url: str, address: Address, probe: str) -> None:
        self.owner = owner
        self.url = url
        self.address = address
        self.probe = probe
        self.channels: dict[str, Channel] = {}
        self.started = time.monotonic()
        self.last_heard = -math.inf
        self.fresh = True  # has heard nothing yet
        self.task: asyncio.Task[None] | None = None
        self._outbox: asyncio.Queue[tuple[str, str]] | None = None
        #: Per channel, the subscriptions sent and not yet confirmed, in the order sent.
        self._unconfirmed: dict[str, deque[Channel]] = {}
        #: Per channel, the unsubscriptions sent and not yet confirmed.
        self._leaving: Counter[str] = Counter()

    def start(self) -> Link:
        self.task = asyncio.get_running_loop().create_task(self._run())
        return self

    def add(self, channel: Channel) -> None:
        self.channels[channel.name] = channel
        channel.link = self
        self._send_subscribe(channel)

    def remove(self, channel: Channel) -> None:
        if self.channels.get(channel.name) is channel:
            del self.channels[channel.name]
        channel.link = None
        if self._outbox is not None:
            self._leaving[channel.name] += 1
            self._outbox.put_nowait(channel.unsubscribe())

    def _send_subscribe(self, channel: Channel) -> None:
        """Queue the command, noting it in send order: Redis confirms in that order, so an
        old confirmation (of a channel left and watched again) never confirms a newer one."""
        if self._outbox is None:
            return  # not connected yet: it is subscribed with the others on connecting
        self._unconfirmed.setdefault(channel.name, deque()).append(channel)
        self._outbox.put_nowait(channel.subscribe())

    def silent_for(self, now: float) -> float:
        """Seconds since it last heard anything (or since it started, before it first does)."""
        return now - max(self.last_heard, self.started)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _run(self) -> None:
        try:
            await self._subscription()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.owner.ended(self, exc)

    async def _subscription(self) -> None:
        """Subscribe the probe and every assigned channel, then hear until it fails."""
        pool: ConnectionPool = ConnectionPool.from_url(
            self.url, decode_responses=True, socket_connect_timeout=5
        )
        if self.address is not None:  # the URL names one node; this link is for another
            pool.connection_kwargs.update(host=self.address[0], port=self.address[1])
        connection: AbstractConnection = pool.make_connection()  # type: ignore[no-untyped-call]
        outbox: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        writer: asyncio.Task[None] | None = None
        try:
            await connection.connect()  # type: ignore[no-untyped-call]
            self._outbox = outbox
            outbox.put_nowait(("SUBSCRIBE", self.probe))
            for channel in list(self.channels.values()):
                self._send_subscribe(channel)
            writer = asyncio.create_task(self._write(connection, outbox))
            while True:
                reply = await connection.read_response(push_request=True)
                if writer.done():
                    writer.result()  # a failed write ends this subscription
                self.last_heard = time.monotonic()
                if isinstance(reply, list) and len(reply) >= 3:
                    if reply[0] in _MESSAGES:  # the hot path: one call per message
                        await self.owner.message(self, reply[1], reply[2])
                    else:
                        await self._answer(reply[0], reply[1])
        finally:
            self._outbox = None
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

    async def _answer(self, kind: str, name: str) -> None:
        if kind in _CONFIRMS:
            waiting = self._unconfirmed.get(name)
            if waiting:
                waiting.popleft().confirmed.set()
                if not waiting:
                    del self._unconfirmed[name]
        elif kind in _ENDS:
            if self._leaving[name] > 0:
                self._leaving[name] -= 1
                if not self._leaving[name]:
                    del self._leaving[name]
            elif name in self.channels:
                self.owner.taken(self, name)
        await self.owner.answered(self)
