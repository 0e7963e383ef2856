"""Fixtures of the messages tests: the fake Groq server, writers, a clean catalog, Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis.asyncio
from aiohttp import web
from tidings.messages import LLMConfig, MessageWriter, catalog

from tests.messages.fake_groq import FakeGroq
from tests.support import free_port


@pytest.fixture
async def fake_groq() -> AsyncIterator[FakeGroq]:
    fake = FakeGroq()
    app = web.Application()
    app.router.add_post("/openai/v1/chat/completions", fake.handle)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    fake.base_url = f"http://127.0.0.1:{port}"
    yield fake
    fake.release()
    await runner.cleanup()


@pytest.fixture
def refused_url() -> str:
    """A URL on which nothing listens: connecting to it is refused."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(autouse=True)
def clean_catalog() -> Iterator[None]:
    """Every test starts and ends with only the built-in catalog."""
    saved = dict(catalog._REGISTERED)
    catalog._REGISTERED.clear()
    yield
    catalog._REGISTERED.clear()
    catalog._REGISTERED.update(saved)


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    """A client of the suite's real redis-server (``redis_url`` is emptied for each test)."""
    client = redis.asyncio.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def make_writer() -> AsyncIterator[Callable[..., MessageWriter]]:
    """Builds MessageWriters and closes every one of them at teardown."""
    writers: list[MessageWriter] = []

    def make(llm: LLMConfig | None = None, **kwargs: Any) -> MessageWriter:
        writer = MessageWriter(llm=llm, **kwargs)
        writers.append(writer)
        return writer

    yield make
    for writer in writers:
        await writer.aclose()
