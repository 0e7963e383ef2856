"""Many nodes, one Redis: python-socketio's Redis manager, made closable and self-checking.

What ``RedisManager`` adds to ``socketio.AsyncRedisManager``, and why:

- ``start`` subscribes when the node starts, before it takes connections. python-socketio waits
  for the first Socket.IO connection, so a node serving only SSE streams would never hear the
  other nodes.
- The subscription has a Redis client of its own. The base class shares one between publishing
  and listening, and a publish that fails replaces it under the listener.
- A probe published on the channel every ``probe_interval`` seconds. A subscription can stay
  connected yet stop receiving (a proxy or failover dropped it); when nothing at all has been
  heard for three intervals it is made afresh. ``listening`` is false until it hears again, and
  ``/readyz`` reports that.
- Catch-up after a gap. Events published while a node was not subscribed never reached it, and
  its clients cannot tell what they missed. So when a new subscription hears its first message,
  the node closes its Socket.IO connections at the transport (clients reconnect and re-subscribe
  with ``epoch`` and ``since``, as after a node's death) and tells its room listeners (SSE
  streams) to catch up from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator
from typing import Any

import socketio
from tidings.constants import SOCKETIO_CHANNEL
from tidings.realtime.connections import close_all
from tidings.realtime.fanout import FanoutManager

logger = logging.getLogger(__name__)

#: Silent probe intervals after which a subscription counts as deaf.
DEAF_AFTER = 3
#: Longest wait between attempts to subscribe (python-socketio's own cap).
MAX_BACKOFF = 60.0
#: Bound on closing connections after a gap: a peer that is gone may never answer.
CLOSE_TIMEOUT = 3.0
#: Bound on waiting at startup for a subscription that neither hears nor fails.
START_TIMEOUT = 5.0


class RedisManager(socketio.AsyncRedisManager, FanoutManager):  # type: ignore[misc]
    """python-socketio's Redis manager with what the module docstring lists."""

    def __init__(self, url: str, *, write_only: bool = False, probe_interval: float = 5.0) -> None:
        super().__init__(url, channel=SOCKETIO_CHANNEL, write_only=write_only)
        self.probe_interval = probe_interval
        self.last_heard = -math.inf
        self.resubscribes = 0
        self._listener_started = time.monotonic()
        self._fresh = False  # a subscription that has not yet heard anything
        self._settled = asyncio.Event()  # the first subscription heard, or failed
        self._probe: asyncio.Task[None] | None = None
        self._stale: list[Any] = []

    async def start(self) -> None:
        """Subscribe now rather than at the first Socket.IO connection, and wait until the
        subscription hears or fails: a client that connected before it might miss events."""
        if not self.server.manager_initialized:
            self.server.manager_initialized = True
            self.initialize()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(START_TIMEOUT):
                await self._settled.wait()

    def initialize(self) -> None:
        self._listener_started = time.monotonic()
        super().initialize()
        if not self.write_only:
            self._probe = asyncio.get_running_loop().create_task(self._probe_forever())

    def _redis_connect(self) -> None:
        # The base class replaces its publishing client on every reconnect without closing it.
        previous: Any = getattr(self, "redis", None)
        if previous is not None:
            self._stale.append(previous)
        super()._redis_connect()

    async def _close_stale(self) -> None:
        stale, self._stale = self._stale, []
        for client in stale:
            with contextlib.suppress(Exception):
                await client.aclose()

    async def _redis_listen_with_retries(self) -> AsyncIterator[Any]:
        """Subscribe, and again after any failure, with capped exponential backoff. A
        subscription that ends without an error (unsubscribed) is made again too."""
        backoff = 1.0
        while True:
            try:
                async for message in self._subscription():
                    backoff = 1.0
                    yield message
                logger.warning("the Redis subscription ended; subscribing again")
            except Exception as exc:
                self._settled.set()
                logger.warning(
                    "Redis subscription failed (%s); subscribing again in %.0f s", exc, backoff
                )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def _subscription(self) -> AsyncIterator[Any]:
        """One subscription, on a client of its own that is closed when it ends."""
        client = self._get_redis_module().Redis.from_url(self.redis_url, **self.redis_options)
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
            self._fresh = True
            await self._send_probe()  # a working subscription hears something at once
            async for message in pubsub.listen():
                yield message
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            with contextlib.suppress(Exception):
                await client.aclose()

    async def _listen(self) -> AsyncIterator[Any]:
        async for data in super()._listen():
            self.last_heard = time.monotonic()
            self._settled.set()
            if self._fresh:
                self._fresh = False
                await self._catch_up_clients()
            yield data

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
        # The base class logs and swallows a failed publish; the silence that follows tells.
        await self._publish({"probe": self.host_id})

    async def _probe_forever(self) -> None:
        while True:
            await asyncio.sleep(self.probe_interval)
            await self._send_probe()
            await self._close_stale()
            silent_since = max(self.last_heard, self._listener_started)
            if time.monotonic() - silent_since >= DEAF_AFTER * self.probe_interval:
                logger.warning(
                    "Redis subscription heard nothing for %.1f s; subscribing again",
                    time.monotonic() - silent_since,
                )
                await self.restart_listener()

    async def restart_listener(self) -> None:
        self.resubscribes += 1
        await self._stop_listener()
        self._listener_started = time.monotonic()
        self.thread = self.server.start_background_task(self._thread)

    async def _stop_listener(self) -> None:
        thread = getattr(self, "thread", None)
        if thread is not None:
            thread.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await thread

    async def aclose(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
        await self._stop_listener()
        redis: Any = getattr(self, "redis", None)
        if redis is not None:
            self._stale.append(redis)
        self.redis, self.pubsub, self.connected = None, None, False
        await self._close_stale()
