"""SIGTERM: every client of the node learns at once, and the node exits soon after.

Measured with real clients of a real ``tidings serve``: the JavaScript socket.io-client the page
bundles (polling, upgraded to websocket, which ignores engine.io's CLOSE packet and waits for the
websocket itself to close: ~10 s before the fix) and Python's ``socketio.AsyncClient``. The issue
asks for "within a second" and "within two"; the bounds asserted are looser (well under the old
10 s) so a loaded machine does not fail them, and the figures are printed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import socketio

from tests.support import ROOT, ServerProcess, eventually

CLIENT = Path(__file__).with_name("shutdown_client.mjs")
SOCKET_IO_CLIENT = ROOT / "client_js" / "node_modules" / "socket.io-client"
#: The old behaviour was ~10 s to the disconnect and ~11.5 s to the exit.
LEARNS_WITHIN = 5.0
EXITS_WITHIN = 5.0


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """The node to stop, and a control node that keeps running."""
    started = []
    try:
        for name in ("stopped", "control"):
            started.append(ServerProcess(log=tmp_path / f"{name}.log").start())
        yield started[0], started[1]
    finally:
        for node in started:
            node.stop()


def _node_client(url: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        ["node", str(CLIENT), url], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    assert line == "connected websocket", line
    return process


def _exit_time(node: ServerProcess, sent: float) -> float:
    assert node.process is not None
    node.process.wait(timeout=30)
    return time.time() - sent


async def test_sigterm_disconnects_every_client_at_once_and_exits(
    nodes: tuple[ServerProcess, ServerProcess],
) -> None:
    assert shutil.which("node"), "node is not installed"
    assert SOCKET_IO_CLIENT.is_dir(), "socket.io-client is missing: npm ci --prefix client_js"
    stopped, control = nodes
    js_client = _node_client(stopped.url)
    js_control = _node_client(control.url)
    python_disconnected: list[float] = []
    python_client = socketio.AsyncClient(reconnection=False)
    python_client.on("disconnect", lambda *_: python_disconnected.append(time.time()))
    await python_client.connect(stopped.url, transports=["websocket"], wait_timeout=10)
    try:
        assert stopped.process is not None
        sent = time.time()
        os.kill(stopped.process.pid, signal.SIGTERM)
        exited = await asyncio.to_thread(_exit_time, stopped, sent)
        out, _ = await asyncio.to_thread(js_client.communicate, timeout=30)
        await eventually(lambda: bool(python_disconnected), within=30, what="the disconnect")
        # Control arm: the client of the node that was not signalled is still connected, so
        # the disconnects measured here are the SIGTERM's doing.
        control_connected = js_control.poll() is None
    finally:
        for process in (js_client, js_control):
            process.kill()
            process.communicate()
        await python_client.shutdown()
    _, at, reason = out.strip().splitlines()[-1].split(" ", 2)
    js_learnt = int(at) / 1000 - sent
    python_learnt = python_disconnected[0] - sent
    print(
        f"after SIGTERM: socket.io-client disconnected in {js_learnt:.2f} s ({reason}), "
        f"socketio.AsyncClient in {python_learnt:.2f} s, the node exited in {exited:.2f} s"
    )
    assert js_learnt < LEARNS_WITHIN
    assert python_learnt < LEARNS_WITHIN
    assert exited < EXITS_WITHIN
    assert control_connected
