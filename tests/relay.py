"""A TCP relay in front of Redis on a free loopback port, for tests that break the wire.

Each test's relay decides, chunk by chunk, what passes (``passes``): make subscriptions deaf,
hold a subscription on its way to Redis, cut a connection that sends a command.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Self


@dataclass
class Link:
    """One client connection through the relay, and what the relay has made of it."""

    writer: asyncio.StreamWriter
    subscriber: bool = False
    deaf: bool = False


class RedisRelay:
    def __init__(self, redis_port: int) -> None:
        self.redis_port = redis_port
        self.links: list[Link] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> Self:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"redis://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/0"

    async def passes(self, chunk: bytes, link: Link, *, to_redis: bool) -> bool:
        """Whether ``chunk`` goes on; may wait, or raise ConnectionError to cut the link."""
        return True

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        redis_reader, redis_writer = await asyncio.open_connection("127.0.0.1", self.redis_port)
        link = Link(writer)
        self.links.append(link)
        try:
            await asyncio.gather(
                self._forward(reader, redis_writer, link, to_redis=True),
                self._forward(redis_reader, writer, link, to_redis=False),
            )
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.links.remove(link)
            self._tasks.discard(task)
            for end in (writer, redis_writer):
                end.close()

    async def _forward(
        self,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
        link: Link,
        *,
        to_redis: bool,
    ) -> None:
        while chunk := await source.read(65536):
            if await self.passes(chunk, link, to_redis=to_redis):
                sink.write(chunk)
                await sink.drain()
        sink.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
