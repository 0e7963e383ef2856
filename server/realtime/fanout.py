"""Local listeners on Socket.IO rooms, for deliveries that are not sockets (the SSE streams).

Every event a node delivers to its sockets passes through the client manager's local ``emit``,
whether it was emitted on this node or arrived from another one through Redis. This manager
hands a copy to in-process listeners of the same rooms, so an SSE stream sees exactly what a
socket in that room would.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import Any

import socketio

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
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._listeners: dict[str, set[Listener]] = defaultdict(set)

    @contextlib.contextmanager
    def listen(self, rooms: Iterable[str]) -> Iterator[Listener]:
        """Receive what this node delivers to these rooms, each event once, until the block ends."""
        listener = Listener()
        names = list(rooms)
        for room in names:
            self._listeners[room].add(listener)
        try:
            yield listener
        finally:
            for room in names:
                self._listeners[room].discard(listener)
                if not self._listeners[room]:
                    del self._listeners[room]

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
