from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path

import pytest

from tests.cluster.redis_cluster import RedisClusterProcesses
from tests.support import ServerProcess

#: Seconds between a node's self-probes in these tests (5 s in production).
PROBE_INTERVAL = 0.2


@contextlib.asynccontextmanager
async def running_nodes(
    tmp_path: Path, *envs: Mapping[str, str]
) -> AsyncIterator[tuple[ServerProcess, ...]]:
    """``tidings serve`` processes started side by side, one per ``env``, all stopped at the
    end (also when one fails to start); their logs go to ``tmp_path``."""
    nodes = tuple(
        ServerProcess(
            {"TIDINGS_PROBE_INTERVAL": str(PROBE_INTERVAL), **env}, tmp_path / f"node-{i}.log"
        )
        for i, env in enumerate(envs)
    )
    try:
        await asyncio.gather(*(asyncio.to_thread(node.start) for node in nodes))
        yield nodes
    finally:
        await asyncio.gather(*(asyncio.to_thread(node.stop) for node in nodes))


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterProcesses]:
    """A Redis Cluster of three masters, for the tests that kill none of them."""
    processes = RedisClusterProcesses(tmp_path_factory.mktemp("cluster"))
    try:
        yield processes.start()
    finally:
        processes.stop()


@pytest.fixture
async def nodes(redis_url: str, tmp_path: Path) -> AsyncIterator[tuple[ServerProcess, ...]]:
    """Two nodes sharing the private Redis."""
    env = {"TIDINGS_REDIS_URL": redis_url}
    async with running_nodes(tmp_path, env, env) as running:
        yield running
