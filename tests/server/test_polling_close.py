"""A polling session that closes answers the client's pending long-poll at once.

python-engineio closes a session on the client's CLOSE with ``abort`` and queues nothing, so the
GET the client already has open waited ``ping_interval + ping_timeout`` (45 s) and was answered
400; python-socketio's client waits for that GET before its ``disconnect`` returns (30 s, its own
timeout), which it also says after a refused connect and after a server-side disconnect. Here
that GET is answered NOOP, as the reference server does (see ``_Socket._end_poll``).

The raw client drives every step itself, so its control arm (the library's close, without the
NOOP) is exact: the session has closed, and the GET waits on its empty queue for the timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import jwt
import pytest
import socketio
from aiohttp import web
from engineio.async_socket import AsyncSocket
from tidings import Settings
from tidings.web.keys import SIO
from tidings.web.transport import _Socket

from tests.support import engine_io_poll, eventually, running_app

SECRET = "polling-close-secret-0123456789-0123456789"
TOKEN = jwt.encode({"sub": "alice", "exp": 4_000_000_000}, SECRET, "HS256")
#: Seconds a client's goodbye may take here: the unanswered GET took 30 s (python-socketio's
#: own timeout) or 45 s (the server's); a bound on waiting, not a timing assertion.
BOUND = 10.0


@pytest.fixture
async def node() -> AsyncIterator[tuple[str, web.Application]]:
    async with running_app(Settings(secret=SECRET)) as (url, app):
        yield url, app


@pytest.fixture(params=[True, False], ids=["fixed", "control"])
def fixed(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """False puts the fault back: the library's close, which leaves a pending GET unanswered."""
    if not request.param:
        monkeypatch.setattr(_Socket, "_end_poll", lambda self: None)
    return bool(request.param)


def parked(socket: AsyncSocket) -> bool:
    """A GET of this session waits on its queue, and nothing is queued to answer it."""
    return bool(socket.queue._getters) and socket.queue.empty()


class RawPolling:
    """An Engine.IO polling session written by hand: each request when the test says."""

    def __init__(self, session: aiohttp.ClientSession, url: str, app: web.Application) -> None:
        self.session, self.url, self.app = session, url, app
        self.sid = ""
        self.socket: AsyncSocket | None = None

    async def open(self) -> None:
        status, opened = await engine_io_poll(self.session, self.url)
        assert status == 200, opened
        self.sid = json.loads(opened.decode()[1:])["sid"]
        self.socket = self.app[SIO].eio.sockets[self.sid]

    async def post(self, body: bytes) -> None:
        assert await engine_io_poll(self.session, self.url, "POST", self.sid, body) == (200, b"OK")

    async def get(self) -> bytes:
        status, body = await engine_io_poll(self.session, self.url, "GET", self.sid)
        assert status == 200, body
        return body

    async def pending_get(self) -> asyncio.Task[tuple[int, bytes]]:
        """A GET, once the server holds it waiting for a packet."""
        get = asyncio.create_task(engine_io_poll(self.session, self.url, "GET", self.sid))
        assert self.socket is not None
        await eventually(lambda: parked(self.socket), what="the GET waiting on the server")
        return get


async def connected(raw: RawPolling) -> str:
    """Connect the namespace: the Socket.IO sid."""
    await raw.post(b"40" + json.dumps({"token": TOKEN}).encode())
    reply = await raw.get()
    assert reply.startswith(b"40{"), reply
    return str(json.loads(reply[2:])["sid"])


async def refused(raw: RawPolling) -> None:
    await raw.post(b"40")  # no token, on a server with a secret
    assert await raw.get() == b'44{"message":"unauthorized"}'


async def server_disconnect(raw: RawPolling) -> None:
    """The server's disconnect (as when a token expires): DISCONNECT, then the client's CLOSE."""
    sid = await connected(raw)
    get = await raw.pending_get()
    await raw.app[SIO].disconnect(sid)
    assert await get == (200, b"41")


@pytest.mark.parametrize(
    "before_close",
    [connected, refused, server_disconnect],
    ids=["goodbye", "refused", "server-disconnect"],
)
async def test_the_pending_poll_is_answered_when_the_client_closes(
    node: tuple[str, web.Application],
    fixed: bool,
    before_close: Callable[[RawPolling], Awaitable[object]],
) -> None:
    url, app = node
    async with aiohttp.ClientSession() as session:
        raw = RawPolling(session, url, app)
        await raw.open()
        await before_close(raw)
        get = await raw.pending_get()
        await raw.post(b"1")  # the client's CLOSE: handled (the session closed) once answered
        assert raw.socket is not None and raw.socket.closed
        if not fixed:
            # The fault, exactly: a closed session whose GET waits on an empty queue, which only
            # the poll's timeout ends (45 s, then 400).
            assert parked(raw.socket) and not get.done()
            get.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await get
            return
        assert await asyncio.wait_for(get, BOUND) == (200, b"6")  # NOOP
    assert raw.sid not in app[SIO].eio.sockets  # answered, the session is forgotten


async def client_goodbye(client: socketio.AsyncClient, url: str, app: web.Application) -> None:
    await client.connect(url, auth={"token": TOKEN}, transports=["polling"], wait_timeout=10)
    await client.disconnect()


async def client_refused(client: socketio.AsyncClient, url: str, app: web.Application) -> None:
    """Its ``connect`` disconnects before it raises."""
    with pytest.raises(socketio.exceptions.ConnectionError, match="failed to connect"):
        await client.connect(url, transports=["polling"], wait_timeout=10)


async def client_disconnected(client: socketio.AsyncClient, url: str, app: web.Application) -> None:
    """The client says its goodbye when the server disconnects it; its read loop (the GET it
    has open) ends with that."""
    await client.connect(url, auth={"token": TOKEN}, transports=["polling"], wait_timeout=10)
    await app[SIO].disconnect(client.get_sid())
    await client.eio.wait()


@pytest.mark.parametrize(
    "ending",
    [client_goodbye, client_refused, client_disconnected],
    ids=["goodbye", "refused", "server-disconnect"],
)
async def test_python_socketio_polling_client_ends_at_once(
    node: tuple[str, web.Application],
    ending: Callable[[socketio.AsyncClient, str, web.Application], Awaitable[None]],
) -> None:
    """The client's own goodbye, in its own timing: it races its next GET against its CLOSE,
    which the raw test orders on purpose (the unfixed server stalled each of these 6 runs out
    of 6; the control below shows the stall on the goodbye, ordered)."""
    url, app = node
    client = socketio.AsyncClient(reconnection=False)
    try:
        await asyncio.wait_for(ending(client, url, app), BOUND)
        await eventually(
            lambda: client.eio.state == "disconnected" and not app[SIO].eio.sockets,
            what="the client disconnected, its session forgotten",
        )
        assert not client.connected
    finally:
        await client.shutdown()


async def test_control_the_library_close_keeps_python_socketio_waiting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the NOOP, python-socketio's ``disconnect`` waits for the GET it has open: the
    session has closed, the GET waits on its empty queue, and only the end of the node (or the
    client's 30 s timeout) lets the goodbye return."""
    monkeypatch.setattr(_Socket, "_end_poll", lambda self: None)
    client = socketio.AsyncClient(reconnection=False)
    async with running_app(Settings(secret=SECRET)) as (url, app):
        await client.connect(url, auth={"token": TOKEN}, transports=["polling"], wait_timeout=10)
        socket = app[SIO].eio.sockets[client.eio.sid]
        await eventually(lambda: parked(socket), what="its next GET waiting on the server")
        goodbye = asyncio.create_task(client.disconnect())
        await eventually(lambda: socket.closed, what="its CLOSE handled")
        assert parked(socket) and not goodbye.done()
    await asyncio.wait_for(goodbye, BOUND)  # the node's shutdown ended that GET
    await client.shutdown()
