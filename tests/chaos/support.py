"""Parts for the attack suite: a node under attack, a control user beside it, a raw websocket.

Every attack goes to 127.0.0.1 only, is bounded in bytes and time, and stops by itself. The
``Control`` is another user of the same node while the attack runs: a worker keeps updating a
job over HTTP, a real Socket.IO client watches it, and ``/healthz`` is probed. It asserts that
every update reached the client in order and that the node answered throughout; the latencies
are printed, not asserted, except for one generous bound that a frozen node exceeds.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import struct
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt

from tests.support import ServerProcess, Watcher

API_KEY = "chaos-api-key"
#: The longest /healthz may take during an attack: a frozen node took 31 s; a busy but healthy
#: one on a shared CI machine takes well under a second.
HEALTHZ_BOUND = 5.0


@contextlib.contextmanager
def node(tmp_path: Path, **env: str) -> Iterator[ServerProcess]:
    """``tidings serve`` as a process with the API key, its log in ``tmp_path/node.log``."""
    process = ServerProcess(
        {"TIDINGS_API_KEY": API_KEY, "TIDINGS_COALESCE_WINDOW": "0", **env},
        tmp_path / "node.log",
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


def slow_csv() -> bytes:
    """A well-formed CSV of about 12 MB: over a second of parsing, far past a 0.2 s budget."""
    rows = ["id,name,amount,date,email"] + [
        f"{i},name {i},{i * 1.5:.2f},2024-01-{i % 28 + 1:02d},u{i}@example.com"
        for i in range(200_000)
    ]
    return "\n".join(rows).encode()


def _status(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if value.strip().endswith("kB"):
            fields[name] = int(value.split()[0]) * 1024
    return fields


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            found += [int(child) for child in (task / "children").read_text().split()]
    return found


def peak_rss(pid: int) -> int:
    """Bytes: the most memory the process has held (VmHWM)."""
    return _status(pid)["VmHWM"]


def rss(pid: int) -> int:
    return _status(pid)["VmRSS"]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def log_size(server: ServerProcess) -> int:
    assert server.log is not None
    return server.log.stat().st_size


def log_since(server: ServerProcess, offset: int) -> str:
    """What the node logged after ``offset``, less the access log (the control's requests)."""
    assert server.log is not None
    with server.log.open("rb") as stream:
        stream.seek(offset)
        text = stream.read().decode(errors="replace")
    return "".join(line for line in text.splitlines(True) if " aiohttp.access: " not in line)


class _TimedWatcher(Watcher):
    def __init__(self, url: str, auth: dict[str, Any] | None) -> None:
        super().__init__(url, auth)
        self.arrived: dict[int, float] = {}

    def _apply(self, event: dict[str, Any]) -> None:
        super()._apply(event)
        self.arrived[event["seq"]] = time.monotonic()


class Control:
    """Another user of the node under attack; ``async with control(url) as c: <attack>``."""

    def __init__(self, url: str, secret: str | None = None, interval: float = 0.05) -> None:
        self.url = url
        self.interval = interval
        self.job_id = f"control-{uuid.uuid4().hex[:12]}"
        auth = None
        if secret is not None:  # a token naming the control job
            claims = {"sub": "control", "exp": int(time.time()) + 600, "jobs": [self.job_id]}
            auth = {"token": jwt.encode(claims, secret, "HS256")}
        self.watcher = _TimedWatcher(url, auth)
        self.sent: dict[int, float] = {}
        self.healthz: list[float] = []
        self.failures: list[str] = []
        self._stop = asyncio.Event()

    async def _post(self, session: aiohttp.ClientSession, step: int) -> int:
        async with session.post(
            f"{self.url}/api/jobs/{self.job_id}/progress",
            json={"step": f"step_{step}", "progress": min(step, 100)},
            headers={"Authorization": f"Bearer {API_KEY}"},
        ) as reply:
            body = await reply.json()
            assert reply.status == 202, body
            return int(body["event"]["seq"])

    async def _drive(self) -> None:
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            step = 1
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    async with session.get(f"{self.url}/healthz") as reply:
                        await reply.read()
                        if reply.status != 200:
                            self.failures.append(f"/healthz answered {reply.status}")
                    self.healthz.append(time.monotonic() - started)
                    step += 1
                    sent = time.monotonic()
                    self.sent[await self._post(session, step)] = sent
                except (aiohttp.ClientError, TimeoutError) as exc:
                    self.failures.append(repr(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.interval)

    async def __aenter__(self) -> Control:
        async with aiohttp.ClientSession() as session:
            first = await self._post(session, 1)
        self.sent[first] = time.monotonic()
        await self.watcher.connect()
        ack = await self.watcher.subscribe(self.job_id)
        assert ack["ok"], ack
        self.subscribed_at = int(ack["job"]["seq"])
        self._task = asyncio.create_task(self._drive())
        return self

    async def __aexit__(self, *exc: object) -> None:
        for _ in range(200):  # a short attack: still, probe the node after it a few times
            if len(self.healthz) >= 3:
                break
            await asyncio.sleep(self.interval)
        self._stop.set()
        await self._task
        try:
            if exc[0] is None:
                await self.check()
        finally:
            await self.watcher.close()

    async def check(self) -> None:
        """Every update arrived, in order; the node answered; the figures printed."""
        last = max(self.sent)
        deadline = time.monotonic() + 15
        while self.watcher.last.get(self.job_id, ("", 0))[1] < last:
            assert time.monotonic() < deadline, "the control client stopped receiving updates"
            await asyncio.sleep(0.02)
        seqs = self.watcher.seqs(self.job_id)
        assert seqs == list(range(self.subscribed_at + 1, last + 1)), seqs
        assert not self.failures, self.failures
        assert self.watcher.disconnects == [], self.watcher.disconnects
        arrived = self.watcher.arrived
        delays = [arrived[seq] - sent for seq, sent in self.sent.items() if seq in arrived]
        print(
            f"\ncontrol: {len(self.sent)} updates in order; update latency max "
            f"{max(delays) * 1000:.0f} ms; /healthz {len(self.healthz)} probes, max "
            f"{max(self.healthz, default=0) * 1000:.0f} ms"
        )
        assert len(self.healthz) >= 2, "the node was probed too rarely to tell"
        assert max(self.healthz) < HEALTHZ_BOUND, f"/healthz took {max(self.healthz):.1f} s"


@contextlib.asynccontextmanager
async def control(url: str, secret: str | None = None) -> AsyncIterator[Control]:
    async with Control(url, secret) as running:
        yield running


async def socketio_connect(url: str, auth: dict[str, Any], transport: str, address: str) -> Any:
    """A real Socket.IO client connecting from ``address`` (any of 127.0.0.0/8, so that the
    per-address throttle sees another client): ``True`` when it connected, else the data of
    the ``connect_error`` that refused it (its ``connect`` has said goodbye by then)."""
    import socketio

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(address, 0)))
    client = socketio.AsyncClient(reconnection=False, http_session=session)
    refusals: list[Any] = []
    client.on("connect_error", refusals.append)
    try:
        await client.connect(url, auth=auth, transports=[transport], wait_timeout=10)
    except socketio.exceptions.ConnectionError:
        if not refusals:
            raise
        return refusals[0]
    else:
        await client.disconnect()
        return True
    finally:
        await client.shutdown()
        await session.close()


class RawWebSocket:
    """A websocket written by hand: any frame, any size, and every byte the server sends back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.raw = b""
        self.ended = False

    @classmethod
    async def open(cls, url: str, query: str = "EIO=4&transport=websocket") -> RawWebSocket:
        match = re.match(r"http://([^:/]+):(\d+)", url)
        assert match
        reader, writer = await asyncio.open_connection(match[1], int(match[2]))
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET /socket.io/?{query} HTTP/1.1\r\nHost: {match[1]}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    @staticmethod
    def frame(payload: bytes, opcode: int = 1, fin: bool = True) -> bytes:
        head = bytes([(0x80 if fin else 0) | opcode])
        size = len(payload)
        if size < 126:
            head += bytes([0x80 | size])
        elif size < 1 << 16:
            head += bytes([0x80 | 126]) + struct.pack("!H", size)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", size)
        mask = os.urandom(4)
        body = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        return head + mask + body

    async def send(self, data: str | bytes, fin: bool = True) -> bool:
        """False once the server has closed the connection."""
        payload, opcode = (data.encode(), 1) if isinstance(data, str) else (data, 2)
        try:
            self.writer.write(self.frame(payload, opcode, fin))
            await self.writer.drain()
        except (ConnectionError, OSError):
            return False
        return not self.writer.is_closing()

    async def frames(
        self, within: float, until: Callable[[bytes], bool] | None = None
    ) -> list[tuple[int, bytes]]:
        """The frames the server sends in ``within`` s or until it closes; a close ends the list.

        ``ended`` tells whether the server ended the connection: a close frame, the end of the
        stream, or a reset (a server that closes with unread bytes from us resets).
        """
        found: list[tuple[int, bytes]] = []
        deadline = time.monotonic() + within
        try:
            while (left := deadline - time.monotonic()) > 0:
                head = await asyncio.wait_for(self.reader.readexactly(2), left)
                size = head[1] & 0x7F
                extra = b""
                if size == 126:
                    extra = await self.reader.readexactly(2)
                    size = struct.unpack("!H", extra)[0]
                elif size == 127:
                    extra = await self.reader.readexactly(8)
                    size = struct.unpack("!Q", extra)[0]
                payload = await self.reader.readexactly(size)
                self.raw += head + extra + payload
                found.append((head[0] & 0x0F, payload))
                if head[0] & 0x0F == 8:
                    self.ended = True
                    break
                if until is not None and until(payload):
                    return found
        except TimeoutError:
            pass
        except asyncio.IncompleteReadError as exc:
            self.raw += exc.partial
            self.ended = True
        except ConnectionError:
            self.ended = True
        with contextlib.suppress(Exception):
            self.raw += await asyncio.wait_for(self.reader.read(), 0.5)
        return found

    async def closed_by_server(self, within: float) -> bool:
        """Whether the server ends the connection within ``within`` s."""
        await self.frames(within)
        return self.ended

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()
