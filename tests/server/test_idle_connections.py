"""What an idle connection costs, and that the cheaper transport still pings and drops the dead.

See the module docstring of ``tidings.web.transport``: one queue without deques while empty, one
``Pinger`` task for every socket's PINGs, and no task per frame waited for.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from aiohttp import web
from tidings import ProgressEmitter, Settings
from tidings.web.keys import SIO
from tidings.web.transport import SocketQueue

from tests.support import Watcher, eventually, running_app

ENGINE_IO = "/socket.io/?EIO=4&transport=websocket"


@pytest.fixture
async def node() -> AsyncIterator[tuple[str, web.Application]]:
    async with running_app(Settings()) as (url, app):
        yield url, app


async def open_raw(session: aiohttp.ClientSession, url: str) -> aiohttp.ClientWebSocketResponse:
    """A raw Engine.IO v4 / Socket.IO v5 websocket, connected to the namespace."""
    ws, _ = await open_raw_sid(session, url)
    return ws


async def open_raw_sid(
    session: aiohttp.ClientSession, url: str
) -> tuple[aiohttp.ClientWebSocketResponse, str]:
    """``open_raw``, and the Socket.IO sid the server gave it."""
    ws = await session.ws_connect(url.replace("http", "ws", 1) + ENGINE_IO)
    assert (await ws.receive_str()).startswith("0{")
    await ws.send_str("40")
    reply = await ws.receive_str()
    assert reply.startswith("40{"), reply
    return ws, json.loads(reply[2:])["sid"]


async def subscribe(ws: aiohttp.ClientWebSocketResponse, job_id: str) -> None:
    await ws.send_str(f'420["subscribe",{json.dumps({"job_id": job_id})}]')
    reply = await ws.receive_str()
    assert reply.startswith("430") and '"ok":true' in reply, reply


# -- SocketQueue: asyncio.Queue's behaviour, as python-engineio and the fan-out use it ----------


async def test_the_queue_is_first_in_first_out_and_get_waits_for_put() -> None:
    queue = SocketQueue()
    getter = asyncio.create_task(queue.get())
    await eventually(lambda: bool(queue._getters), what="the getter to wait")
    assert queue.empty()
    queue.put_nowait("a")
    queue.put_nowait("b")
    assert await getter == "a"
    assert queue.qsize() == 1 and queue.get_nowait() == "b"
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()


async def test_a_waiting_get_is_visible_as_the_fanout_reads_it() -> None:
    """``fanout.writer_idle``: an empty queue with a getter parked means an idle writer."""
    queue = SocketQueue()
    assert not queue._getters  # nobody waits: not idle, a writer may be busy
    getter = asyncio.create_task(queue.get())
    await eventually(lambda: bool(queue._getters), what="the getter to wait")
    queue.put_nowait("x")
    assert not queue._getters  # woken: it is no longer waiting
    assert await getter == "x"


async def test_a_cancelled_getter_passes_its_item_to_the_next() -> None:
    queue = SocketQueue()
    first = asyncio.create_task(queue.get())
    second = asyncio.create_task(queue.get())
    await eventually(lambda: len(queue._getters) == 2, what="both getters to wait")
    queue.put_nowait("only")  # wakes the first ...
    first.cancel()  # ... which is cancelled before it takes the item
    with contextlib.suppress(asyncio.CancelledError):
        await first
    assert await second == "only"


async def test_join_waits_for_every_item_to_be_done() -> None:
    queue = SocketQueue()
    await queue.join()  # nothing queued: returns at once
    queue.put_nowait(1)
    queue.put_nowait(2)
    joined = asyncio.create_task(queue.join())
    queue.get_nowait()
    queue.task_done()
    await asyncio.sleep(0)
    assert not joined.done()  # control: one item is still not done
    queue.get_nowait()
    queue.task_done()
    await joined
    with pytest.raises(ValueError):
        queue.task_done()


async def test_when_put_waits_as_a_getter_without_a_task() -> None:
    """The parked writer: visible to the fan-out as a waiting getter, called once an item is
    there (at once if one already is), and never before."""
    queue = SocketQueue()
    calls: list[str] = []
    queue.when_put(lambda: calls.append("woken"))
    assert queue._getters and not calls
    await asyncio.sleep(0)
    assert not calls  # control: nothing was put
    queue.put_nowait("x")
    assert not queue._getters
    await eventually(lambda: calls == ["woken"], what="the callback")
    queue.when_put(lambda: calls.append("at once"))  # "x" is still there
    assert not queue._getters
    await eventually(lambda: calls == ["woken", "at once"], what="the second callback")


async def test_an_empty_queue_holds_no_deque() -> None:
    queue = SocketQueue()
    queue.put_nowait("x")
    assert queue._items is not None
    queue.get_nowait()
    assert queue._items is None


# -- the transport ------------------------------------------------------------------------------


async def test_an_idle_subscribed_websocket_runs_two_tasks(
    node: tuple[str, web.Application],
) -> None:
    """aiohttp's two (the connection, its request); no writer waiting, no ping task, no task
    per frame or packet waited for."""
    url, app = node
    await ProgressEmitter.for_app(app).send_progress("idle-1", "extracting", 1)
    count = 20
    before = asyncio.all_tasks()
    async with aiohttp.ClientSession() as session:
        sockets = [await open_raw(session, url) for _ in range(count)]
        for ws in sockets:
            await subscribe(ws, "idle-1")
        engine = app[SIO].eio
        await eventually(lambda: len(engine.sockets) == count, what="every socket")
        await eventually(lambda: engine.pinger._task is not None, what="pings scheduled")
        # The node's own: the pinger, the library's ping-timeout check and what it waits in.
        shared = {"Pinger._run": 1, "AsyncServer._service_task": 1, "Event.wait": 1}
        per_socket = {"RequestHandler.start": 1, "RequestHandler._handle_request": 1}
        expected = {**shared, **{name: n * count for name, n in per_socket.items()}}
        await eventually(lambda: running(before) == expected, what="only the idle tasks")
        assert running(before) == expected
        for ws in sockets:
            await ws.close()


async def test_an_open_websocket_keeps_nothing_of_its_http_request_it_no_longer_reads(
    node: tuple[str, web.Application],
) -> None:
    """Once the handshake is done: no python-engineio request handling under the reader, an
    environ of what tidings reads, no HTTP parser; and the connection still works."""
    url, app = node
    emitter = ProgressEmitter.for_app(app)
    await emitter.send_progress("idle-2", "extracting", 1)
    before = asyncio.all_tasks()
    async with aiohttp.ClientSession() as session:
        ws = await open_raw(session, url)  # its Socket.IO connect read the trimmed environ
        await subscribe(ws, "idle-2")
        sio = app[SIO]
        (eio_sid,) = sio.eio.sockets
        environ = sio.environ[eio_sid]
        assert sorted(environ) == ["QUERY_STRING", "aiohttp.request"]
        assert environ["aiohttp.request"].protocol._parser is None
        (handler,) = [
            task
            for task in asyncio.all_tasks() - before
            if task.get_coro().__qualname__ == "RequestHandler._handle_request"  # type: ignore[union-attr]
        ]
        frames = list(coroutine_chain(handler.get_coro()))
        assert "_Socket._websocket_handler" in frames
        assert not {"AsyncServer.handle_request", "_WebSocket.__call__"} & set(frames), frames
        await emitter.send_progress("idle-2", "extracting", 2)
        while not (text := await ws.receive_str()).startswith("42"):
            pass
        assert '"progress":2' in text.replace(" ", "")
        await ws.close()
    await eventually(lambda: not sio.eio.sockets, what="the socket forgotten")


def coroutine_chain(coro: object) -> Iterator[str]:
    """The qualified names of a coroutine and of those it awaits, down the chain."""
    while coro is not None:
        yield getattr(coro, "__qualname__", type(coro).__name__)
        coro = getattr(coro, "cr_await", None)


def running(before: set[asyncio.Task[object]]) -> dict[str, int]:
    """The tasks started since ``before``, counted by coroutine."""
    names = [task.get_coro().__qualname__ for task in asyncio.all_tasks() - before]  # type: ignore[union-attr]
    return dict(collections.Counter(names))


async def test_pings_keep_answering_clients_and_the_silent_ones_are_dropped(
    node: tuple[str, web.Application],
) -> None:
    """Three clients, each sending a NOOP now and then (so only PINGs can tell them apart):
    one answers PINGs over a raw websocket, one is python-socketio's client (polling, then
    upgraded to a websocket), one never answers. Only the last is disconnected, for the reason
    "ping timeout", and its websocket closed, while the others go on answering. A fourth that
    sends nothing at all has its websocket closed too (there is no read timeout: the ping
    timeout ends it)."""
    url, app = node
    engine = app[SIO].eio
    engine.ping_interval, engine.ping_timeout = 1, 1
    namespace = app[SIO].namespace_handlers["/"]
    reasons: dict[str, object] = {}
    on_disconnect = namespace.on_disconnect

    async def record(sid: str, reason: object = None) -> None:  # a spy: the real handler runs
        reasons[sid] = reason
        await on_disconnect(sid, reason)

    namespace.on_disconnect = record
    pings = {"answering": 0, "silent": 0}
    closed: list[str] = []

    async def client(ws: aiohttp.ClientWebSocketResponse, name: str, answer: bool) -> None:
        async def noops() -> None:
            while True:
                await ws.send_str("6")
                await asyncio.sleep(0.3)

        chatter = asyncio.create_task(noops())
        try:
            async for message in ws:
                if message.data == "2":
                    pings[name] += 1
                    if answer:
                        await ws.send_str("3")
        finally:
            closed.append(name)
            chatter.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await chatter

    upgraded = await Watcher(url, transports=["polling", "websocket"]).connect()
    async with aiohttp.ClientSession() as session:
        answering, answering_sid = await open_raw_sid(session, url)
        silent, silent_sid = await open_raw_sid(session, url)
        mute, mute_sid = await open_raw_sid(session, url)
        tasks = [
            asyncio.create_task(client(answering, "answering", answer=True)),
            asyncio.create_task(client(silent, "silent", answer=False)),
        ]
        await eventually(lambda: closed == ["silent"], within=20, what="the silent one dropped")
        assert reasons.get(silent_sid) == "ping timeout"
        assert pings["silent"] == 1  # it was pinged once, and never answered
        await eventually(lambda: pings["answering"] >= 4, within=20, what="pings go on")
        assert closed == ["silent"] and answering_sid not in reasons  # the control arm
        assert upgraded.client.transport() == "websocket" and upgraded.client.connected
        while (message := await mute.receive(timeout=20)).type is aiohttp.WSMsgType.TEXT:
            pass  # its PING: then the websocket closes
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert reasons.get(mute_sid) == "ping timeout"
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await answering.close()
    await upgraded.close()


async def test_the_pinger_stops_at_shutdown_and_stays_stopped() -> None:
    async with running_app(Settings()) as (url, app), aiohttp.ClientSession() as session:
        ws = await open_raw(session, url)
        engine = app[SIO].eio
        (socket,) = engine.sockets.values()
        assert engine.pinger._task is not None  # control: it was pinging
        await ws.close()
    assert engine.pinger._task is None
    engine.pinger.schedule(socket)  # a PONG that arrives after shutdown
    assert engine.pinger._task is None
