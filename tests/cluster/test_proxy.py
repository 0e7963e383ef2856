"""The nodes behind nginx running deploy/nginx.conf, the file docker-compose.yml mounts."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import socketio

from tests.cluster.parts import Nginx, RoamingWatcher, collect_stream
from tests.support import ServerProcess, Watcher, eventually, http_json


def nginx_in_front(tmp_path: Path, nodes: tuple[ServerProcess, ...], sticky: bool = True) -> Nginx:
    directory = tmp_path / "nginx"
    directory.mkdir()
    return Nginx(directory, [f"127.0.0.1:{node.port}" for node in nodes], sticky=sticky).start()


@pytest.fixture
def proxy(nodes: tuple[ServerProcess, ...], tmp_path: Path) -> Iterator[Nginx]:
    nginx = nginx_in_front(tmp_path, nodes)
    yield nginx
    nginx.stop()


async def emit(url: str, job_id: str, progress: int, **fields: Any) -> None:
    status, _ = await http_json(
        "POST", f"{url}/api/jobs/{job_id}/progress", {"step": "extracting", "progress": progress, **fields}
    )
    assert status == 202


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_a_client_through_the_proxy_receives_every_event(proxy: Nginx, transport: str) -> None:
    watcher = await Watcher(proxy.url, transports=[transport]).connect()
    try:
        assert watcher.client.transport() == transport
        await watcher.subscribe("via-proxy")
        for progress in range(10, 100, 10):
            await emit(proxy.url, "via-proxy", progress)
        await emit(proxy.url, "via-proxy", 100, status="done")
        await eventually(lambda: len(watcher.applied) == 10, what="every event")
    finally:
        await watcher.close()
    assert watcher.seqs("via-proxy") == list(range(1, 11))
    assert watcher.resubscribes == 0


async def test_polling_without_sticky_routing_fails(
    nodes: tuple[ServerProcess, ...], tmp_path: Path
) -> None:
    nginx = nginx_in_front(tmp_path, nodes, sticky=False)
    watcher = Watcher(nginx.url, transports=["polling"])
    try:
        await watcher.connect()
        await watcher.subscribe("x")
    finally:
        await watcher.close()
        nginx.stop()
