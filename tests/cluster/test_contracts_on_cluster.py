"""The store's and the upload registry's contracts, run on a Redis Cluster.

The contract tests of ``tests/server/test_store_contract.py`` and ``tests/ingest/test_registry.py``
that take only the store (or registry) run here again, against clients that ``connect`` made
from the URL of one cluster node: every script call, pipeline and listing must work with the
keys spread over three masters. The tests that inspect Redis with a client of one node stay
with the single Redis.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from types import ModuleType

import pytest
import redis
from tidings.ingest.registry import RedisRegistry, Registry
from tidings.store import JobStore, RedisStore, connect

from tests.cluster.redis_cluster import RedisClusterProcesses
from tests.ingest import test_registry
from tests.server import test_store_contract


def _taking_only(module: ModuleType, fixture: str) -> dict[str, object]:
    return {
        name: test
        for name, test in vars(module).items()
        if name.startswith("test_") and list(inspect.signature(test).parameters) == [fixture]
    }


globals().update(_taking_only(test_store_contract, "store"))
globals().update(_taking_only(test_registry, "registry"))


@pytest.fixture
def cluster_url(cluster: RedisClusterProcesses) -> str:
    """The cluster, emptied for this test (every master)."""
    for master in cluster.masters():
        with redis.Redis(port=master.port) as client:
            client.flushall()
    return cluster.url


@pytest.fixture
async def store(cluster_url: str) -> AsyncIterator[JobStore]:
    made = RedisStore(connect(cluster_url), test_store_contract.CONTRACT_LIMITS)
    yield made
    await made.aclose()


@pytest.fixture
async def registry(cluster_url: str) -> AsyncIterator[Registry]:
    made = RedisRegistry(connect(cluster_url))
    yield made
    await made.aclose()
