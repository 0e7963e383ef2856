"""SIGTERM: every client of the node learns at once, and the node exits soon after.

Measured with real clients of a real ``tidings serve``: the JavaScript socket.io-client the page
bundles (polling, upgraded to websocket, which ignores engine.io's CLOSE packet and waits for the
websocket itself to close: ~10 s before the fix) and Python's ``socketio.AsyncClient``. The issue
asks for "within a second" and "within two"; the bounds asserted are looser (well under the old
10 s) so a loaded machine does not fail them, and the figures are printed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
import socketio
from aiohttp import web
from tidings.cli.serve import run_until
from tidings.realtime.connections import close_all
from tidings.settings import Settings
from tidings.web.app import create_app
from tidings.web.keys import SIO
from tidings.web.transport import TidingsEngine

from tests.support import ROOT, ServerProcess, eventually, free_port

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


# The shutdown itself, in this process: the node's engine.io server is at hand, so the tests
# wait for the states that matter rather than for time to pass.

#: engine.io's ping timeout while a test runs: its service task visits each connection once
#: per ping timeout, and forgets a closed one then.
BRISK = 0.05
#: The ping timeout set once the node has no connection left: the service task then waits this
#: long in its branch for a node without connections.
IDLE = 3600.0


@contextlib.asynccontextmanager
async def _node(
    app: web.Application,
) -> AsyncIterator[tuple[str, asyncio.Event, asyncio.Task[list[str]]]]:
    """``serve``'s own loop around ``app`` on a free port: its URL, the event that stops it (the
    signal handler's) and the task that returns what would not end."""
    port = free_port()
    stop = asyncio.Event()
    node = asyncio.create_task(run_until(app, "127.0.0.1", port, stop))
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            await _until_listening(session, url)
        yield url, stop, node
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await node


async def _until_listening(session: aiohttp.ClientSession, url: str) -> None:
    for _ in range(500):
        with contextlib.suppress(aiohttp.ClientConnectionError):
            async with session.get(f"{url}/healthz") as reply:
                if reply.status == 200:
                    return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"{url} did not answer")


def _service_idle(app: web.Application) -> bool:
    """engine.io's service task waits in its branch for a node without connections: the one
    wait of that task that a cancellation ends with CancelledError rather than a break."""
    task = app[SIO].eio.service_task_handle
    awaited = task.get_coro().cr_await if task is not None else None
    frame = getattr(awaited, "cr_frame", None)
    return frame is not None and frame.f_locals.get("timeout") == IDLE


async def _every_client_left(app: web.Application, url: str) -> None:
    """A client came and went, and engine.io's service task now idles."""
    engine = app[SIO].eio
    engine.ping_timeout = BRISK
    client = socketio.AsyncClient(reconnection=False)
    await client.connect(url, transports=["websocket"], wait_timeout=10)
    await client.disconnect()
    await eventually(lambda: not engine.sockets, what="the connection forgotten")
    engine.ping_timeout = IDLE
    await eventually(lambda: _service_idle(app), what="the service task idle")


async def test_a_stop_after_every_client_left_runs_the_whole_shutdown() -> None:
    """The node used to let the SIGTERM through the loop, so asyncio cancelled every task at
    once; engine.io's service task, cancelled while it idled, raised into ``on_shutdown``, which
    ended there: no connection was shut down, no resource closed, and a task that survived its
    one cancellation kept the process alive. Control arm: stopped that way, the shutdown's last
    hook does not run."""
    for old_way in (False, True):
        app = create_app(Settings())
        finished: list[bool] = []

        async def last_hook(_: web.Application, finished: list[bool] = finished) -> None:
            finished.append(True)

        app.on_cleanup.append(last_hook)  # after the cleanup contexts: the very end
        spared = asyncio.all_tasks()  # this test's, not the node's
        async with _node(app) as (url, stop, node):
            await _every_client_left(app, url)
            if old_way:  # what asyncio.Runner did once aiohttp raised GracefulExit
                for task in asyncio.all_tasks() - spared:
                    task.cancel()
            else:
                stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                assert await node == []
        assert finished == ([] if old_way else [True])


async def test_a_shutdown_that_does_not_finish_is_cut_short_and_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Whatever a hook or a client does, the node stops within a bound and says, in its log,
    where the shutdown waited and which task would not end; ``serve`` then exits. Control arm:
    the same node without the hook that never returns stops cleanly, nothing named."""
    release = asyncio.Event()

    async def never_returns(_: web.Application) -> None:
        while not release.is_set():  # survives the shutdown's cancellation too
            with contextlib.suppress(asyncio.CancelledError):
                await release.wait()

    try:
        for stubborn in (False, True):
            app = create_app(Settings())
            if stubborn:
                app.on_shutdown.append(never_returns)
            caplog.clear()
            async with _node(app) as (_, stop, node):
                stop.set()
                stuck = await node
            logged = [record.getMessage() for record in caplog.records if record.levelno >= 40]
            if stubborn:
                assert [where.split(" ")[0] for where in stuck] == [never_returns.__qualname__]
                assert len(logged) == 2, logged
                assert f"waiting in {never_returns.__qualname__}" in logged[0]
                assert "1 tasks would not end" in logged[1]
            else:
                assert stuck == []
                assert logged == []
    finally:
        release.set()


def _websocket(port: int, query: str) -> socket.socket:
    """A websocket to the node, opened by hand: a test client that can stop reading."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /socket.io/?EIO=4&transport=websocket{query} HTTP/1.1\r\nHost: tidings\r\n"
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert b" 101 " in head, head
    return sock


def _frame(text: str) -> bytes:
    """One masked text frame, as a client sends it."""
    data, mask = text.encode(), os.urandom(4)
    size = bytes([0x80 | len(data)]) if len(data) < 126 else bytes([0xFE]) + len(data).to_bytes(2)
    return b"\x81" + size + mask + bytes(byte ^ mask[i % 4] for i, byte in enumerate(data))


def _deaf_websocket(port: int) -> socket.socket:
    """A websocket that asks for more than it reads: thousands of events, each answered, and
    then it reads nothing, so that the node's writes to it stall."""
    sock = _websocket(port, "")
    question = _frame('420["' + "e" * 64 + '"]')  # an unknown event, with an ack: an answer
    sock.sendall(_frame("40") + question * 40_000)
    return sock


def _half_open_upgrade(url: str, port: int) -> socket.socket:
    """A polling session whose upgrade to websocket was opened and never carried on."""
    with urllib.request.urlopen(f"{url}/socket.io/?EIO=4&transport=polling", timeout=10) as reply:
        sid = json.loads(reply.read().decode()[1:])["sid"]
    return _websocket(port, f"&sid={sid}")


async def test_a_node_with_clients_of_every_kind_stops_cleanly(tmp_path: Path) -> None:
    """Clients of every kind at once (websocket, polling in the middle of a poll, an upgrade
    left half-open, Server-Sent Events, a websocket that stopped reading): at SIGTERM the node
    runs its whole shutdown and exits; its log says ``stopped`` and names nothing stuck."""
    log = tmp_path / "node.log"
    node = ServerProcess(log=log).start()
    sockets = [_deaf_websocket(node.port), _half_open_upgrade(node.url, node.port)]
    clients = []
    async with aiohttp.ClientSession() as session:
        try:
            for transport in ("websocket", "polling"):
                client = socketio.AsyncClient(reconnection=False)
                await client.connect(node.url, transports=[transport], wait_timeout=10)
                clients.append(client)
            stream = await session.get(f"{node.url}/api/stream?user_id=every-kind")
            assert stream.status == 200
            assert node.process is not None
            os.kill(node.process.pid, signal.SIGTERM)
            await asyncio.to_thread(node.process.wait, 30)  # a bound: it used to be "never"
        finally:
            node.kill()
            for sock in sockets:
                sock.close()
            for client in clients:
                await client.shutdown()
    lines = log.read_text().splitlines()
    assert lines[-1].endswith("INFO tidings: stopped"), lines[-5:]
    assert not [line for line in lines if "would not end" in line or "did not finish" in line]


async def test_a_stop_after_a_redis_gap_with_a_client_that_stopped_reading() -> None:
    """The hang seen, in this process: a client stops reading (the node's writes to it stall), a
    gap in the Redis subscription makes the node close its connections (``close_all``, as the
    manager does when it subscribes again), engine.io forgets them and idles, then the stop.
    A real node on the code before this test hung there for good: asyncio.Runner waited for the
    websocket's reader, which had outlived its one cancellation waiting for its writer (cancelled
    mid-send), and on_shutdown, aborted by the service task, never cancelled it again (the test
    above shows that abort, with its control arm). Here the node must stop cleanly."""
    app = create_app(Settings())
    engine = app[SIO].eio
    engine.ping_timeout = BRISK
    async with _node(app) as (url, stop, node):
        port = int(url.rsplit(":", 1)[1])
        deaf = await asyncio.to_thread(_deaf_websocket, port)
        try:
            await eventually(
                lambda: _stalled(engine), within=30, what="every frame read, the writes stalled"
            )
            await close_all(engine, 0.5)
            await eventually(lambda: not engine.sockets, what="the connections forgotten")
            engine.ping_timeout = IDLE
            await eventually(lambda: _service_idle(app), what="the service task idle")
            stop.set()
            assert await node == []
        finally:
            deaf.close()


def _stalled(engine: TidingsEngine) -> bool:
    """The node's reader of its one websocket waits for the next frame (it has read all the
    client sent), and its writes wait for the client to read."""
    return any(
        ws._waiting and ws._req is not None and ws._req.protocol.writing_paused
        for ws in engine.websockets.values()
    )
