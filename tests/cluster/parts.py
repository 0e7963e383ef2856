"""Real parts of a cluster for the tests: worker processes, a roaming client, a relay that can
make a Redis subscription deaf, nginx running deploy/nginx.conf, and docker-compose.yml read."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import socketio

from tests.relay import Link, RedisRelay
from tests.support import ROOT, Watcher, eventually, free_port, http_json, wait_for

NGINX_CONF = ROOT / "deploy" / "nginx.conf"
COMPOSE_FILE = ROOT / "docker-compose.yml"


async def readyz(url: str) -> int:
    status, _ = await http_json("GET", f"{url}/readyz")
    return status


async def seq_on(url: str, job_id: str) -> int:
    """The job's latest seq as a node reports it (0 before the job exists)."""
    status, job = await http_json("GET", f"{url}/api/jobs/{job_id}")
    return int(job["seq"]) if status == 200 else 0


async def post_progress(url: str, job_id: str, progress: float | None, **fields: Any) -> None:
    """``POST /api/jobs/{id}/progress`` through a node or the proxy, as any-language workers do."""
    body = {"step": "extracting", "progress": progress, **fields}
    status, answer = await http_json("POST", f"{url}/api/jobs/{job_id}/progress", body)
    assert status == 202, answer


async def until(check: Any, within: float = 20.0, what: str = "condition") -> None:
    """``eventually`` for an async check; a bound on waiting, not a timing assertion."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


class Worker:
    """``python -m tests.cluster.worker`` as a process: COUNT updates of one job, steadily."""

    def __init__(
        self,
        redis_url: str,
        job_id: str,
        count: int,
        acked: Path,
        interval: float,
        owner: str | None = None,
    ) -> None:
        self.args = [
            *(["--owner", owner] if owner else []),
            redis_url,
            job_id,
            str(count),
            "--acked",
            str(acked),
            "--interval",
            str(interval),
        ]
        self.acked_file = acked
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> Worker:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.cluster.worker",
            *self.args,
            cwd=ROOT,
            stdout=subprocess.PIPE,
        )
        return self

    async def finish(self, within: float = 60.0) -> dict[str, Any]:
        """Wait for the worker to end well; its summary (``{"errors": n}``)."""
        assert self.process is not None
        async with asyncio.timeout(within):
            out, _ = await self.process.communicate()
        assert self.process.returncode == 0, f"worker exited with {self.process.returncode}"
        return dict(json.loads(out.decode().strip().splitlines()[-1]))

    def acked(self) -> list[dict[str, Any]]:
        """Every update the emitter acknowledged with an Event: ``{"epoch", "seq", "row"}``."""
        return [json.loads(line) for line in self.acked_file.read_text().splitlines()]

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


class RoamingWatcher(Watcher):
    """A Watcher that, like socket.io-client, reconnects when its connection drops: to the next
    of ``urls`` (the same one when there is one), then re-subscribes every job it watches. With
    ``catch_up`` it keeps the client rule (``epoch`` and ``since``); without, it subscribes afresh
    as a client that forgot where it was (the control arm).

    ``resume``, when given, holds each reconnect until it is set, so a test decides how much
    happens while the client is away.
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        catch_up: bool = True,
        transports: list[str] | None = None,
        resume: asyncio.Event | None = None,
    ) -> None:
        super().__init__(urls[0], catch_up=catch_up, transports=transports)
        self.urls = list(urls)
        self.resume = resume
        self.watching: list[str] = []
        self.reconnects = 0
        self._closing = False
        self._roaming: asyncio.Task[None] | None = None

    async def subscribe(self, job_id: str) -> dict[str, Any]:
        if job_id not in self.watching:
            self.watching.append(job_id)
        return await super().subscribe(job_id)

    def _on_disconnect(self, reason: Any = None) -> None:
        super()._on_disconnect(reason)
        if not self._closing:
            self._roaming = asyncio.get_running_loop().create_task(self._roam())

    async def _roam(self) -> None:
        if self.resume is not None:
            await self.resume.wait()
        # python-engineio drops its HTTP session at the very end of a disconnect, after the state
        # says "disconnected": a connect before that would have its new session dropped.
        eio = self.client.eio
        await eventually(
            lambda: eio.state == "disconnected" and eio.http is None, what="the old connection"
        )
        index = self.urls.index(self.url)
        async with asyncio.timeout(30):
            while True:
                index = (index + 1) % len(self.urls)
                self.url = self.urls[index]
                try:
                    await self.connect()
                    break
                except socketio.exceptions.ConnectionError:
                    await asyncio.sleep(0.1)
        self.reconnects += 1
        for job_id in self.watching:
            if not self.catch_up:
                self.last.pop(job_id, None)
            await self.subscribe(job_id)

    async def close(self) -> None:
        self._closing = True
        roaming = self._roaming
        if roaming is not None and not roaming.done():
            roaming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await roaming
        await super().close()
        if roaming is not None and not roaming.cancelled():
            roaming.result()  # a reconnect that failed fails the test here


class SubscriptionBlackHole(RedisRelay):
    """A TCP relay in front of Redis that can make subscriptions deaf without closing them.

    After ``deafen()``, every connection that has sent SUBSCRIBE, and every one that sends it
    later, stays open while what Redis sends it is dropped: no error, no message, exactly what a
    proxy or failover that lost the subscription looks like. ``hear()`` lets new subscriptions
    through again; the deaf ones stay deaf, as they would.
    """

    def __init__(self, redis_port: int) -> None:
        super().__init__(redis_port)
        self.deaf = False
        self.subscriptions = 0  # connections that ever sent SUBSCRIBE

    def deafen(self) -> None:
        self.deaf = True
        for link in self.links:
            link.deaf = link.deaf or link.subscriber

    def hear(self) -> None:
        self.deaf = False

    async def passes(self, chunk: bytes, link: Link, *, to_redis: bool) -> bool:
        if to_redis and not link.subscriber and b"SUBSCRIBE" in chunk.upper():
            self.subscriptions += 1
            link.subscriber = True
            link.deaf = link.deaf or self.deaf
        return to_redis or not link.deaf


class Nginx:
    """nginx from the machine (Debian nginx-light) running deploy/nginx.conf, the file the
    compose file mounts, with only its addresses changed: the upstream names become local
    nodes, the listen port a free one, and nginx's own files go into ``directory``.

    ``sticky=False`` removes ``ip_hash`` (the control arm of the polling test); ``replace``
    changes more of the file (each key must occur in it), for other control arms.
    """

    UPSTREAMS = ("tidings-1:8000", "tidings-2:8000")

    def __init__(
        self,
        directory: Path,
        nodes: Sequence[str],
        *,
        sticky: bool = True,
        replace: dict[str, str] | None = None,
    ) -> None:
        self.directory = directory
        self.replace = replace or {}
        self.port = free_port()
        self.nodes = nodes
        self.sticky = sticky
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> str:
        text = NGINX_CONF.read_text()
        replacements = [
            ("listen 8080;", f"listen 127.0.0.1:{self.port};"),
            ("http {", "http {\n" + self._local_paths()),
            *(
                (f"server {name}", f"server {node}")
                for name, node in zip(self.UPSTREAMS, self.nodes, strict=True)
            ),
        ]
        if not self.sticky:
            replacements.append(("ip_hash;", ""))
        replacements.extend(self.replace.items())
        for old, new in replacements:
            assert text.count(old) == 1, f"deploy/nginx.conf no longer has one {old!r}"
            text = text.replace(old, new)
        return text

    def _local_paths(self) -> str:
        lines = [f"    access_log {self.directory}/access.log;"]
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            lines.append(f"    {kind}_temp_path {self.directory}/{kind};")
        return "\n".join(lines) + "\n"

    def start(self) -> Nginx:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        conf = self.directory / "nginx.conf"
        conf.write_text(self.config())
        with open(self.directory / "error.log", "ab") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    "-p",
                    str(self.directory),
                    "-c",
                    str(conf),
                    "-e",
                    "stderr",
                    "-g",
                    f"daemon off; pid {self.directory}/nginx.pid;",
                ],
                stderr=log,
            )
        wait_for(self._listening, what=f"nginx on {self.port}")
        return self

    def _listening(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            log = (self.directory / "error.log").read_text()
            raise RuntimeError(f"nginx exited with {self.process.returncode}: {log}")
        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
            return True

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def load_compose(text: str) -> dict[str, Any]:
    """docker-compose.yml read without PyYAML (not a dependency): the file keeps to block
    mappings, block sequences of scalars and JSON-style flow values, and this reads exactly
    that, refusing anything else rather than guessing."""
    lines = []
    for raw in text.splitlines():
        content = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if content:
            lines.append((len(content) - len(content.lstrip(" ")), content.strip()))
    value, end = _block(lines, 0, 0)
    if end != len(lines):
        raise ValueError(f"cannot read line {lines[end][1]!r}")
    assert isinstance(value, dict)
    return value


def _block(lines: list[tuple[int, str]], start: int, indent: int) -> tuple[Any, int]:
    index = start
    if lines[index][1].startswith("- "):
        items = []
        while index < len(lines) and lines[index][0] == indent and lines[index][1].startswith("- "):
            items.append(_scalar(lines[index][1][2:]))
            index += 1
        return items, index
    mapping: dict[str, Any] = {}
    while index < len(lines) and lines[index][0] == indent:
        key, colon, rest = lines[index][1].partition(":")
        if not colon or (rest and not rest.startswith(" ")):
            raise ValueError(f"not a mapping entry: {lines[index][1]!r}")
        index += 1
        if rest.strip():
            mapping[key] = _scalar(rest.strip())
        elif index < len(lines) and lines[index][0] > indent:
            mapping[key], index = _block(lines, index, lines[index][0])
        else:
            mapping[key] = None
    return mapping, index


def _scalar(text: str) -> Any:
    if text[0] in '[{"':
        return json.loads(text)
    if text[0] in "&*'|>!" or ": " in text:
        raise ValueError(f"YAML this reader does not take: {text!r}")
    return text


async def collect_stream(url: str, sink: list[tuple[str, dict[str, Any]]]) -> None:
    """Read a Server-Sent Events response to its end: ``(event, data)`` into ``sink``."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200, await response.text()
        name, data = "", []
        async for raw in response.content:
            line = raw.decode().rstrip("\r\n")
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
            elif not line and name:
                sink.append((name, json.loads("\n".join(data))))
                name, data = "", []


async def hang_up(watcher: Watcher) -> None:
    """Close a polling client without waiting for its pending long-poll, which
    python-engineio's server does not answer when the client closes (it would wait for the ping
    timeout, 30 s); socket.io-client in a browser aborts that request the same way."""
    await watcher.client.eio.disconnect(abort=True)
    await watcher.client.shutdown()
