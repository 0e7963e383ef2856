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

from server import Settings, create_app

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(check: Any, timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


class RedisServer:
    """A private redis-server on a free port; never the machine's own on 6379."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed (.ci/run installs it)"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
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
    """``python -m server serve`` as a real process, ended by its pid."""

    def __init__(self, env: Mapping[str, str] | None = None, log: Path | None = None) -> None:
        self.port = free_port()
        self.env = {**os.environ, "TIDINGS_HOST": "127.0.0.1", "TIDINGS_PORT": str(self.port),
                    **(env or {})}
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "server", "serve"], cwd=ROOT, env=self.env,
            stdout=out, stderr=subprocess.STDOUT,
        )
        wait_for(self.healthy, timeout=30, what=f"tidings on {self.port}")
        return self

    def healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"tidings exited with {self.process.returncode}")
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
def server_process(env: Mapping[str, str] | None = None, log: Path | None = None
                   ) -> Iterator[ServerProcess]:
    node = ServerProcess(env, log).start()
    try:
        yield node
    finally:
        node.stop()


async def http_json(method: str, url: str, body: Any = None, token: str | None = None
                    ) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session, session.request(
        method, url, json=body, headers=headers
    ) as response:
        return response.status, await response.json(content_type=None)


async def eventually(check: Any, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if check():
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)
