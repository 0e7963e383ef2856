"""Many nodes, one Redis: python-socketio's Redis manager, made closable and self-checking."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import socketio

from .constants import SOCKETIO_CHANNEL
from .fanout import FanoutManager

logger = logging.getLogger(__name__)


class RedisManager(socketio.AsyncRedisManager, FanoutManager):  # type: ignore[misc]
    """Adds what production needs: ``aclose``, and a probe that notices a deaf subscription.

    A subscription can stay connected yet stop receiving (a proxy or failover dropped it). Every
    ``probe_interval`` seconds the node publishes a probe on the channel it listens to; when
    nothing at all has been heard for three intervals the listener is restarted, which connects
    and subscribes afresh.
    """

    def __init__(self, url: str, *, write_only: bool = False, probe_interval: float = 5.0) -> None:
        super().__init__(url, channel=SOCKETIO_CHANNEL, write_only=write_only)
        self.probe_interval = probe_interval
        self.last_heard = time.monotonic()
        self.resubscribes = 0
        self._probe: asyncio.Task[None] | None = None
        self._stale: list[Any] = []

    def _redis_connect(self) -> None:
        # The base class replaces its client on every (re)connect without closing the old one.
        previous: Any = getattr(self, "redis", None)
        if previous is not None:
            self._stale.append(previous)
        super()._redis_connect()

    async def _close_stale(self) -> None:
        stale, self._stale = self._stale, []
        for client in stale:
            with contextlib.suppress(Exception):
                await client.aclose()

    def initialize(self) -> None:
        super().initialize()
        if not self.write_only:
            self._probe = asyncio.get_running_loop().create_task(self._probe_forever())

    async def _listen(self) -> AsyncIterator[Any]:
        async for data in super()._listen():
            self.last_heard = time.monotonic()
            yield data

    @property
    def listening(self) -> bool:
        """Heard something (at least its own probe) recently."""
        return time.monotonic() - self.last_heard < 3 * self.probe_interval

    async def _probe_forever(self) -> None:
        while True:
            await asyncio.sleep(self.probe_interval)
            try:
                await self._publish({"probe": self.host_id})
            except Exception:
                logger.exception("probe publish failed")
            await self._close_stale()
            if not self.listening:
                logger.warning(
                    "Redis subscription heard nothing for %.0f s; resubscribing",
                    time.monotonic() - self.last_heard,
                )
                await self.restart_listener()

    async def restart_listener(self) -> None:
        self.resubscribes += 1
        self.last_heard = time.monotonic()
        await self._stop_listener()
        await self._close_connection()
        self.thread = self.server.start_background_task(self._thread)

    async def _stop_listener(self) -> None:
        thread = getattr(self, "thread", None)
        if thread is not None:
            thread.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await thread

    async def _close_connection(self) -> None:
        redis: Any = getattr(self, "redis", None)
        if redis is not None:
            self._stale.append(redis)
        self.redis, self.pubsub, self.connected = None, None, False
        await self._close_stale()

    async def aclose(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
        await self._stop_listener()
        await self._close_connection()
