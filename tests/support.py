"""Real parts for tests: a redis-server, tidings nodes in-process or as processes, free ports."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from tidings import ProgressEmitter, Settings
from tidings.web import create_app

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Gone(RuntimeError):
    """The process being waited for has exited: no point waiting longer."""


def wait_for(check: Any, timeout: float = 15.0, what: str = "condition") -> None:
    """Poll ``check()`` (connection errors mean "not yet"); a process that died ends the wait."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Gone:
            raise
        except Exception:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


class RedisServer:
    """A private redis-server on a free port; never the machine's own on 6379.

    ``options`` are more redis-server arguments (later ones win), e.g. ``--appendonly yes``.
    """

    def __init__(self, directory: Path, *options: str) -> None:
        self.port = free_port()
        self.directory = directory
        self.options = options
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed (.ci/run installs it)"
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                *self.options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self.ping, what=f"redis-server on {self.port}")

    def ping(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def crash(self) -> None:
        """SIGKILL: no shutdown save, as when the machine or the OOM killer ends it."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None


@contextlib.asynccontextmanager
async def redis_worker(redis_url: str) -> AsyncIterator[ProgressEmitter]:
    """A worker's emitter on ``redis_url`` that sends every update as it is made (no
    coalescing), as a test counting events needs."""
    emitter = ProgressEmitter.from_url(redis_url, Settings(coalesce_window=0))
    try:
        yield emitter
    finally:
        await emitter.aclose()


async def check_burst(
    watchers: list[Watcher], manager: Any, before: tuple[int, int], last: int, *, guarded: bool
) -> None:
    """A burst of ``seq`` 2..``last`` reached every watcher, some of it by the fan-out's direct
    writes and some through the queue (``before``: the manager's two counts before it), and the
    watchers are closed. Every watcher has it in order; the control (``guarded`` False): all of
    it arrived, and some watcher had it out of order."""
    expected = list(range(2, last + 1))
    for watcher in watchers:
        await eventually(lambda w=watcher: len(w.received) == len(expected), what="the burst")
    assert manager.direct > before[0] and manager.queued > before[1]  # both paths taken
    received = [[event["seq"] for event in w.received] for w in watchers]
    for watcher in watchers:
        await watcher.close()
    if guarded:
        assert all(seqs == expected for seqs in received)
    else:
        assert any(seqs != expected for seqs in received)  # the control: out of order
        assert all(sorted(seqs) == expected for seqs in received)  # but all there


@contextlib.asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[tuple[str, web.Application]]:
    """A tidings node in this process on a free port: its base URL and application."""
    port = free_port()
    app = create_app(settings.model_copy(update={"host": "127.0.0.1", "port": port}))
    runner = web.AppRunner(app, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        await runner.cleanup()


class ServerProcess:
    """``python -m tidings serve`` as a real process, ended by its pid."""

    def __init__(self, env: Mapping[str, str] | None = None, log: Path | None = None) -> None:
        self.port = free_port()
        self.env = {
            **os.environ,
            "TIDINGS_HOST": "127.0.0.1",
            "TIDINGS_PORT": str(self.port),
            **(env or {}),
        }
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tidings", "serve"],
            cwd=ROOT,
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        if self.log:
            out.close()  # the process has its own copy
        wait_for(self.healthy, timeout=30, what=f"tidings on {self.port}")
        return self

    def healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise Gone(f"tidings exited with {self.process.returncode}")
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
            sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
            return b" 200 " in sock.recv(64)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, sig)
            self.process.wait(timeout=15)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)


@contextlib.contextmanager
def server_process(
    env: Mapping[str, str] | None = None, log: Path | None = None
) -> Iterator[ServerProcess]:
    node = ServerProcess(env, log).start()
    try:
        yield node
    finally:
        node.stop()


async def http_json(
    method: str, url: str, body: Any = None, token: str | None = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, json=body, headers=headers) as response,
    ):
        return response.status, await response.json(content_type=None)


async def engine_io_poll(
    session: aiohttp.ClientSession, url: str, method: str = "GET", sid: str = "", body: bytes = b""
) -> tuple[int, bytes]:
    """One Engine.IO long-polling request written by hand (no sid: the handshake): its status
    and body."""
    query = "EIO=4&transport=polling" + (f"&sid={sid}" if sid else "")
    async with session.request(method, f"{url}/socket.io/?{query}", data=body) as reply:
        return reply.status, await reply.read()


async def eventually(check: Any, within: float = 10.0, what: str = "condition") -> None:
    """Poll until ``check()`` is true; a bound on waiting, not a timing assertion."""
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class Watcher:
    """A real Socket.IO client that keeps the PROTOCOL.md client rule and records what it applied.

    ``applied`` is every (job_id, seq) it applied, in order; with ``catch_up=False`` it applies
    whatever arrives and never re-subscribes (the control arm of the delivery tests).
    """

    def __init__(
        self,
        url: str,
        auth: dict[str, Any] | None = None,
        *,
        catch_up: bool = True,
        transports: list[str] | None = None,
    ) -> None:
        import socketio

        self.url = url
        self.auth = auth
        self.catch_up = catch_up
        self.transports = transports or ["websocket"]
        self.client = socketio.AsyncClient(reconnection=False)
        self.last: dict[str, tuple[str, int]] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.applied: list[tuple[str, int]] = []
        self.received: list[dict[str, Any]] = []
        self.resubscribes = 0
        self.disconnects: list[str] = []
        self.connect_errors: list[Any] = []
        for name in ("job_update", "job_complete", "job_error"):
            self.client.on(name, self._on_event)
        self.client.on("job_batch", self._on_batch)
        self.client.on("disconnect", self._on_disconnect)
        self.client.on("connect_error", self.connect_errors.append)
        # Handlers run as concurrent tasks: one at a time keeps the rule's state consistent.
        self._lock = asyncio.Lock()

    async def connect(self) -> Watcher:
        await self.client.connect(
            self.url, auth=self.auth, transports=self.transports, wait_timeout=10
        )
        return self

    async def close(self) -> None:
        await self.client.disconnect()
        await self.client.shutdown()

    async def call(self, event: str, payload: Any = None) -> Any:
        return await self.client.call(event, payload, timeout=10)

    async def subscribe(self, job_id: str) -> dict[str, Any]:
        async with self._lock:
            return await self._subscribe(job_id)

    async def _subscribe(self, job_id: str) -> dict[str, Any]:
        payload: dict[str, Any] = {"job_id": job_id}
        if job_id in self.last:
            payload["epoch"], payload["since"] = self.last[job_id]
        ack = await self.call("subscribe", payload)
        if not ack.get("ok"):
            return dict(ack)
        job = ack["job"]
        if job is not None and not ack["recovered"]:
            self.last[job_id] = (job["epoch"], job["seq"])
            self.jobs[job_id] = job
        for event in ack["events"]:
            if event["seq"] == self.last[job_id][1] + 1:
                self._apply(event)
        return dict(ack)

    def _apply(self, event: dict[str, Any]) -> None:
        self.last[event["job_id"]] = (event["epoch"], event["seq"])
        self.jobs[event["job_id"]] = event
        self.applied.append((event["job_id"], event["seq"]))

    async def _on_event(self, event: dict[str, Any]) -> None:
        async with self._lock:
            await self._take(event)

    async def _take(self, event: dict[str, Any]) -> None:
        self.received.append(event)
        job_id = event["job_id"]
        if not self.catch_up:
            self._apply(event)
            return
        if job_id not in self.last and event["seq"] == 1:
            self._apply(event)  # the first event of an epoch: nothing can come before it
            return
        epoch, seq = self.last.get(job_id, (None, 0))
        if event["epoch"] == epoch and event["seq"] <= seq:
            return
        if event["epoch"] == epoch and event["seq"] == seq + 1:
            self._apply(event)
            return
        self.resubscribes += 1
        await self._subscribe(job_id)

    async def _on_batch(self, batch: dict[str, Any]) -> None:
        async with self._lock:
            for event in batch["events"]:
                await self._take(event)

    def _on_disconnect(self, reason: Any = None) -> None:
        self.disconnects.append(str(reason))

    def seqs(self, job_id: str) -> list[int]:
        return [seq for applied_job, seq in self.applied if applied_job == job_id]
