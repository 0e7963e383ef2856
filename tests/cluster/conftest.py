from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import pytest

from tests.support import ServerProcess

#: Seconds between a node's self-probes in these tests (5 s in production).
PROBE_INTERVAL = 0.2


async def start_nodes(
    tmp_path: Path, *envs: Mapping[str, str]
) -> tuple[ServerProcess, ...]:
    """``tidings serve`` processes, started side by side; their logs go to ``tmp_path``."""
    nodes = [
        ServerProcess({"TIDINGS_PROBE_INTERVAL": str(PROBE_INTERVAL), **env}, tmp_path / f"node-{i}.log")
        for i, env in enumerate(envs)
    ]
    await asyncio.gather(*(asyncio.to_thread(node.start) for node in nodes))
    return tuple(nodes)


@pytest.fixture
async def nodes(redis_url: str, tmp_path: Path) -> AsyncIterator[tuple[ServerProcess, ...]]:
    """Two nodes sharing the private Redis."""
    env = {"TIDINGS_REDIS_URL": redis_url}
    running = await start_nodes(tmp_path, env, env)
    try:
        yield running
    finally:
        await asyncio.gather(*(asyncio.to_thread(node.stop) for node in running))
