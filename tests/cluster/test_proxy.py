"""The nodes behind nginx running deploy/nginx.conf, the file docker-compose.yml mounts:
websocket and polling clients, sticky routing, Server-Sent Events, and a node dying."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.cluster.parts import Nginx, RoamingWatcher, collect_stream, hang_up, post_progress
from tests.support import ROOT, ServerProcess, Watcher, eventually, http_json

PROXY_PAGE = Path(__file__).with_name("proxy_page.mjs")
CHROMIUM = Path("/usr/bin/chromium")
PLAYWRIGHT = ROOT / "client_js" / "node_modules" / "playwright-core"


def nginx_in_front(
    tmp_path: Path, nodes: tuple[ServerProcess, ...], *, sticky: bool = True
) -> Nginx:
    directory = tmp_path / "nginx"
    directory.mkdir()
    return Nginx(directory, [f"127.0.0.1:{node.port}" for node in nodes], sticky=sticky).start()


@pytest.fixture
def proxy(nodes: tuple[ServerProcess, ...], tmp_path: Path) -> Iterator[Nginx]:
    nginx = nginx_in_front(tmp_path, nodes)
    yield nginx
    nginx.stop()


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_a_client_through_the_proxy_receives_every_event(
    proxy: Nginx, transport: str
) -> None:
    watcher = await Watcher(proxy.url, transports=[transport]).connect()
    try:
        assert watcher.client.transport() == transport
        await watcher.subscribe("via-proxy")
        for progress in range(10, 100, 10):
            await post_progress(proxy.url, "via-proxy", progress)
        await post_progress(proxy.url, "via-proxy", 100, status="done")
        await eventually(lambda: len(watcher.applied) == 10, what="every event")
    finally:
        await hang_up(watcher)
    assert watcher.seqs("via-proxy") == list(range(1, 11))
    assert watcher.resubscribes == 0


@pytest.mark.parametrize("sticky", [True, False], ids=["as-committed", "without-ip_hash"])
async def test_the_polling_transport_needs_sticky_routing(
    nodes: tuple[ServerProcess, ...], tmp_path: Path, sticky: bool
) -> None:
    """A polling session lives on one node; its next request, routed elsewhere, is refused."""
    nginx = nginx_in_front(tmp_path, nodes, sticky=sticky)
    polling = f"{nginx.url}/socket.io/?EIO=4&transport=polling"
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(polling) as response:
                sid = json.loads((await response.text())[1:])["sid"]
            statuses = []
            for _ in range(4):  # Socket.IO's connect, then pings of the engine.io session
                async with session.post(f"{polling}&sid={sid}", data="40") as response:
                    statuses.append(response.status)
    finally:
        nginx.stop()
    if sticky:
        assert statuses == [200, 200, 200, 200]
    else:
        assert 400 in statuses  # round robin: some requests reach the node without the session


async def test_server_sent_events_stream_through_the_proxy_as_they_happen(proxy: Nginx) -> None:
    status, _ = await http_json("POST", f"{proxy.url}/api/jobs", {"job_id": "sse-proxy"})
    assert status == 201
    received: list[tuple[str, dict[str, Any]]] = []
    stream = asyncio.create_task(collect_stream(f"{proxy.url}/api/jobs/sse-proxy/stream", received))
    try:
        await eventually(lambda: len(received) == 1, what="the snapshot")
        for count, progress in enumerate((25, 50, 75), start=2):
            await post_progress(proxy.url, "sse-proxy", progress)
            # Each event arrives before the next is sent: nothing waits in a buffer.
            await eventually(lambda n=count: len(received) == n, what="the event")
        await post_progress(proxy.url, "sse-proxy", 100, status="done")
        async with asyncio.timeout(15):
            await stream  # the stream ends after the terminal event
    finally:
        stream.cancel()
    assert [(name, data["seq"]) for name, data in received] == [
        ("snapshot", 1),
        ("job_update", 2),
        ("job_update", 3),
        ("job_update", 4),
        ("job_complete", 5),
    ]


async def test_when_the_node_behind_the_proxy_dies_its_client_reconnects_through_the_proxy(
    proxy: Nginx, nodes: tuple[ServerProcess, ...]
) -> None:
    watcher = await RoamingWatcher([proxy.url]).connect()
    try:
        await watcher.subscribe("failover")
        await post_progress(proxy.url, "failover", 10)
        await eventually(lambda: watcher.seqs("failover") == [1], what="the first event")
        serving = [node for node in nodes if await _connected_sockets(node) == 1]
        assert len(serving) == 1
        serving[0].kill()
        survivor = next(node for node in nodes if node is not serving[0])
        await post_progress(survivor.url, "failover", 50)  # while the client is away
        await eventually(lambda: watcher.reconnects == 1, what="the reconnect")
        await post_progress(proxy.url, "failover", 100, status="done")
        await eventually(lambda: watcher.seqs("failover")[-1:] == [3], what="the end")
        assert await _connected_sockets(survivor) == 1  # the proxy sent the client there
    finally:
        await watcher.close()
    assert watcher.seqs("failover") == [1, 2, 3]


async def _connected_sockets(node: ServerProcess) -> float:
    async with aiohttp.ClientSession() as session, session.get(f"{node.url}/metrics") as response:
        for line in (await response.text()).splitlines():
            if line.startswith("tidings_connected_sockets "):
                return float(line.split()[1])
    raise AssertionError("/metrics has no tidings_connected_sockets")


@pytest.mark.parametrize(
    "host_header", ["$http_host", "$host"], ids=["as-committed", "host-without-port"]
)
def test_a_browser_through_the_proxy_on_another_port_goes_live_over_websocket(
    nodes: tuple[ServerProcess, ...], tmp_path: Path, host_header: str
) -> None:
    """Chromium through nginx on a port other than 80: python-engineio compares the browser's
    Origin with the Host the node receives, so the proxy must forward the host with its port.
    The control arm forwards ``$host`` (no port) and sees the page refused and on SSE."""
    assert shutil.which("node"), "node is not installed"
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)"
    assert PLAYWRIGHT.is_dir(), "playwright-core is missing: npm ci --prefix client_js"
    directory = tmp_path / "nginx"
    directory.mkdir()
    nginx = Nginx(
        directory,
        [f"127.0.0.1:{node.port}" for node in nodes],
        replace={"proxy_set_header Host $http_host;": f"proxy_set_header Host {host_header};"},
    ).start()
    try:
        assert nginx.port != 80
        result = subprocess.run(
            ["node", str(PROXY_PAGE), json.dumps({"url": nginx.url, "artifacts": str(tmp_path)})],
            cwd=ROOT,
            env={**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"},
            capture_output=True,
            text=True,
            timeout=110,
            check=False,
        )
    finally:
        nginx.stop()
    output = result.stdout + result.stderr
    print(output)
    if host_header == "$http_host":
        assert result.returncode == 0 and output.rstrip().endswith("ok"), output
    else:
        assert result.returncode != 0, output
        assert "not an accepted origin" in output or "refused Socket.IO" in output, output
