"""Local listeners on Socket.IO rooms, for deliveries that are not sockets (the SSE streams).

Every event a node delivers passes through ``deliver`` (or ``emit``, which the Socket.IO server
calls), whether the embedded store produced it on this node or it arrived on a Redis channel.
This manager hands a copy to in-process listeners of the same rooms, so an SSE stream sees
exactly what a socket in that room would. ``watch`` and ``unwatch`` are where a manager that
feeds rooms from elsewhere (``RedisManager``) learns which rooms have local watchers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from typing import Any

import socketio
from tidings.constants import NAMESPACE

#: Events a slow listener may fall behind before it is told to catch up from the store.
LISTENER_QUEUE = 1000


class Listener:
    """Events of some rooms, in delivery order; ``overflowed`` when some were dropped."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(LISTENER_QUEUE)
        self.overflowed = False

    def put(self, event: str, data: Any) -> None:
        try:
            self.queue.put_nowait((event, data))
        except asyncio.QueueFull:
            self.overflowed = True

    async def get(self) -> tuple[str, Any]:
        return await self.queue.get()


class FanoutManager(socketio.AsyncManager):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self._listeners: dict[str, set[Listener]] = defaultdict(set)

    async def watch(self, room: Any) -> None:
        """A local watcher joined ``room``: return once the room's events reach this node."""

    def unwatch(self, room: Any) -> None:
        """A local watcher left ``room`` (it may still have others)."""

    @contextlib.asynccontextmanager
    async def listen(self, rooms: Iterable[str]) -> AsyncIterator[Listener]:
        """Receive what this node delivers to these rooms, each event once, until the block
        ends; entered once every room's events reach this node, so a read after it misses
        nothing."""
        listener = Listener()
        names = list(rooms)
        for room in names:
            self._listeners[room].add(listener)
        try:
            for room in names:
                await self.watch(room)
            yield listener
        finally:
            for room in names:
                self._listeners[room].discard(listener)
                if not self._listeners[room]:
                    del self._listeners[room]
                self.unwatch(room)

    async def deliver(
        self, event: str, data: Any, room: str, *, besides: str | None = None
    ) -> None:
        """Deliver to this node's watchers of ``room`` that do not also watch ``besides``."""
        listeners = self._listeners.get(room, set())
        if besides is not None and besides in self._listeners:
            listeners = listeners - self._listeners[besides]
        for listener in listeners:
            listener.put(event, data)
        skip = None
        if besides is not None:
            skip = [sid for sid, _ in self.get_participants(NAMESPACE, besides)]
        await super().emit(event, data, namespace=NAMESPACE, room=room, skip_sid=skip)

    async def emit(
        self, event: str, data: Any, namespace: str | None = None, room: Any = None, **kwargs: Any
    ) -> Any:
        if self._listeners and room is not None:
            rooms = [room] if isinstance(room, str) else list(room)
            reached: set[Listener] = set()
            for name in rooms:
                reached.update(self._listeners.get(name, ()))
            for listener in reached:
                listener.put(event, data)
        return await super().emit(event, data, namespace=namespace, room=room, **kwargs)
