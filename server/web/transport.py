"""The Socket.IO server a node runs: python-socketio's, made cheap to feed garbage to.

What ``TidingsServer`` and ``TidingsEngine`` add to their base classes, and why:

- **No binary events.** The protocol has none, and a binary packet's header announces
  attachments the library would buffer until they all arrive (999,999,999 of them, if it says
  so). A binary packet header, a binary message or a binary websocket frame closes the
  connection at once.
- **Malformed packets cost a counter.** The library answers each packet it cannot decode with a
  logged traceback; here each one adds to ``malformed`` and to its connection's strikes, and at
  most one log line per ``LOG_INTERVAL`` says how many there were. A connection that reaches
  ``MAX_STRIKES`` is closed. A second CONNECT to a namespace the connection is in counts too:
  the library would open one more session for each.
- **Nothing HTTP is written into an upgraded stream.** A failure inside the websocket handler
  would otherwise reach the error middleware, which would write a 500 reply into the websocket.
  Engine.IO packets are checked before the library decodes them, and whatever still fails ends
  that websocket.
- **The advertised ``maxPayload`` is the enforced one.** aiohttp refuses a message of exactly
  ``max_msg_size`` bytes, so the websocket is opened with one byte more.
- **A closed polling session is an unknown one.** The library raises ``KeyError`` (a 500) for a
  request to a session that has closed but is not yet forgotten; here it answers 400.
- **A polling session that closes answers its pending poll.** On the client's CLOSE the library
  queues nothing, so the GET the client has open waited 45 s; here it is answered NOOP at once,
  as the reference server does (``_Socket._end_poll``).
- **Wrong tokens at connect spend the HTTP API's budget.** A connect refused ``unauthorized``
  takes from its address's bucket of the ``FailureThrottle`` that answers HTTP 429; while that is
  empty, a connect with a token is refused ``rate_limited``. One budget per address, whichever
  way the guesses come.
- **An idle websocket costs less memory** (RSS at 5,000 connections: 36 KiB each at first,
  24 KiB after a first round, 15 KiB after a second; ``bench/memory_breakdown.py`` shows where
  it goes, the README has the figures).
  python-engineio gives every connection an ``asyncio.Queue`` (four deques, 3 KiB even when
  empty), a writer task waiting on it, a task that sleeps until the socket's next PING, and
  waits with ``asyncio.wait_for``, which wraps what it waits for in one more task: the reader's
  next frame and the writer's next packet, for as long as the connection is idle. Here the
  queue is a ``SocketQueue``, one ``Pinger`` task sends every socket's PINGs, and a connection
  opened as a websocket reads in its handler's own task with no timer, its writer a task only
  while it has something to send (an upgrade from polling keeps the library's loops). A client
  that stops answering PINGs, or sends nothing at all, is still dropped by the library's
  ping-timeout check, which here also closes its websocket. The handler reads the websocket
  once python-engineio's request handling has returned (``_WebSocket.__call__``), not beneath
  it, and once the handshake is done the connection lets go of what it no longer reads of its
  HTTP request (``_forget_http``).
- **A client that stops reading is cut off at its ping timeout.** Its writer would wait in a
  send for as long as the client's kernel keeps the connection open (forever, for a client
  that keeps TCP alive), and the reader for the writer; the ping timeout resets its connection
  instead (``_Socket.close``), a writer that ends any way releases the reader, and a
  connection that ends with bytes its peer has not taken is reset rather than left to wait
  for the peer to take them.
  permessage-deflate is negotiated only when configured (``websocket_compression``), rather
  than by copying each upgrade request to hide the client's offer.

What each refusal counts (``malformed``, ``binary``, ``refused``, ``connects_refused``) is read
by ``/metrics``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import struct
import time
from collections import Counter
from collections.abc import Callable
from socket import SO_LINGER, SOL_SOCKET
from typing import Any, Final

import engineio
import socketio
from aiohttp import WSCloseCode, WSMessage, web
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet
from engineio.async_drivers import aiohttp as aiohttp_driver
from engineio.async_socket import AsyncSocket
from socketio import packet as sio_packet
from tidings.web.api import FailureThrottle

__all__ = [
    "LOG_INTERVAL",
    "MAX_STRIKES",
    "Pinger",
    "QuietLogger",
    "SocketQueue",
    "TidingsEngine",
    "TidingsServer",
]

logger = logging.getLogger(__name__)

#: Malformed packets after which a connection is closed.
MAX_STRIKES: Final = 5
#: Seconds between two log lines about malformed input (the rest are counted).
LOG_INTERVAL: Final = 10.0
#: Seconds a refused websocket waits for the client's close frame.
CLOSE_TIMEOUT: Final = 2.0
#: Why a connect is refused, as counted; anything else counts as ``other``.
CONNECT_REFUSALS: Final = ("unauthorized", "rate_limited", "unavailable", "other")
_ENGINE_TYPES: Final = frozenset("0123456")
#: What the environ python-socketio keeps of a websocket's request holds after the handshake.
_ENVIRON_KEPT: Final = ("QUERY_STRING", "aiohttp.request")
#: The queue of parsed HTTP requests of every upgraded connection: always empty.
_NO_MESSAGES: Final[collections.deque[Any]] = collections.deque(maxlen=0)
#: SO_LINGER on, for 0 s: closing the socket resets the connection.
_RESET: Final = struct.pack("ii", 1, 0)


class QuietLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The libraries' logger: no info lines, warnings and errors counted, one line per interval,
    no traceback.

    python-engineio and python-socketio log a traceback for every packet a handler fails on;
    ten thousand three-byte packets made 16 MB of log. The first failure of an interval is
    logged (its exception named, not traced); the others are counted into the next line.
    """

    def __init__(self, target: logging.Logger, interval: float = LOG_INTERVAL) -> None:
        super().__init__(target, {})
        self.interval = interval
        self.suppressed = 0
        self._last = float("-inf")

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if level < logging.WARNING:
            return  # a line per packet, with the packet in it: amplification of its own
        exc_info = kwargs.pop("exc_info", None)
        now = time.monotonic()
        if now - self._last < self.interval:
            self.suppressed += 1
            return
        self._last, suppressed, self.suppressed = now, self.suppressed, 0
        reason = _exception_name() if exc_info else ""
        try:
            text = str(msg) % args if args else str(msg)
        except (TypeError, ValueError):  # a message that is not a format string after all
            text = f"{msg} {args!r}"
        self.logger.log(level, "%s%s (%d more like it not logged)", text[:200], reason, suppressed)

    def exception(self, msg: object, *args: Any, **kwargs: Any) -> None:
        self.log(logging.ERROR, msg, *args, exc_info=True)


def _exception_name() -> str:
    import sys

    exc = sys.exc_info()[1]
    return "" if exc is None else f": {type(exc).__name__}: {str(exc)[:100]}"


class _WebSocket(aiohttp_driver.WebSocket):  # type: ignore[misc]
    """The library's aiohttp websocket, one byte roomier, refusing binary and garbage frames."""

    async def __call__(self, environ: dict[str, Any]) -> web.WebSocketResponse:
        """The handshake only. python-engineio awaits this at the bottom of its request
        handling (five coroutine frames, the parsed query, the OPEN packet, ...), which would
        stay for as long as the connection lives if the handler ran here; it returns up
        through them instead, and ``TidingsEngine.handle_request`` runs the handler, which
        reads the websocket until it closes."""
        request: web.Request = environ["aiohttp.request"]
        engine: TidingsEngine = self.server
        self._sock = web.WebSocketResponse(
            max_msg_size=engine.max_http_buffer_size + 1,
            timeout=CLOSE_TIMEOUT,
            compress=engine.websocket_compression,
        )
        request[_WEBSOCKET] = self
        await self._sock.prepare(request)
        self.environ = environ
        _forget_http(request, self._sock, environ)
        return self._sock

    def backed_up(self) -> bool:
        """Bytes written to the websocket that its peer has not yet taken."""
        transport = self.environ["aiohttp.request"].transport
        return transport is not None and transport.get_write_buffer_size() > 0

    def abort(self) -> None:
        """Drop the connection at once, and what it still holds to send: a send waiting for the
        peer to read then ends, and so does the read waiting for its next frame.

        With a zero linger the kernel resets the connection and frees its send buffer (up to
        4 MiB, autotuned): a plain close would leave that queued behind the peer's zero window,
        the connection orphaned but alive, for as long as the peer answers the probes."""
        transport = self.environ["aiohttp.request"].transport
        if transport is None:
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(SOL_SOCKET, SO_LINGER, _RESET)
        transport.abort()

    async def hang_up(self, code: int, message: bytes) -> None:
        """Close with ``code`` now, reading nothing more: the close frame goes, then the
        connection ends. (A websocket's ``close`` reads, and drops, what the peer still sends
        while it waits up to ``CLOSE_TIMEOUT`` for the peer's close frame: a client refused for
        flooding the server with what it may not send would go on for that long.)"""
        transport = self.environ["aiohttp.request"].transport
        closing = asyncio.ensure_future(self._sock.close(code=code, message=message))
        await asyncio.sleep(0)  # its first step writes the close frame
        if transport is not None:
            transport.close()  # what it buffers is sent first
        with contextlib.suppress(Exception):
            await closing

    async def wait(self) -> str:
        """The next text frame; ``OSError`` (the library's "closed") for anything else."""
        return self.text(await self._sock.receive())

    def text(self, message: WSMessage) -> str:
        """The text of a text frame; ``OSError`` (the library's "closed") for anything else.

        A binary frame is a binary Engine.IO message, which the protocol has no use for; an
        empty frame or one that is no Engine.IO packet would raise inside the library's loop.
        """
        data = message.data
        if isinstance(data, bytes):
            self.server.strike(self.handler.__self__.sid, "binary websocket frame", binary=True)
            raise OSError("binary frame")
        if not isinstance(data, str):
            raise OSError("closed")
        if not data or data[0] not in _ENGINE_TYPES:
            self.server.strike(self.handler.__self__.sid, "malformed Engine.IO packet", fatal=True)
            raise OSError("malformed packet")
        return data


#: The websocket a request opened, once its handshake has begun.
_WEBSOCKET: Final = web.RequestKey("tidings_websocket", _WebSocket)


def _forget_http(
    request: web.Request, response: web.WebSocketResponse, environ: dict[str, Any]
) -> None:
    """Let go of what a websocket no longer reads of its HTTP request once the handshake is
    done (it would be kept for as long as the connection lives):

    - the environ python-socketio keeps: 28 entries, the headers again under new names. It
      keeps what tidings reads: the request (its address at the Socket.IO connect, its
      transport for the fan-out's direct writes, ``backed_up`` and ``abort``) and the query
      (``fanout._wire`` tells a websocket opened as one by it). It is cleared in place:
      python-socketio holds that same dict;
    - what aiohttp keeps for the HTTP requests that will not come (the protocol feeds the
      websocket's reader now): its parser, dropped as aiohttp drops it at disconnect, and its
      queue of parsed requests, one deque each, here one that stays empty for all of them;
    - the properties of the request computed so far (its query, URL, ...), computed again
      if read;
    - the handshake's reply headers, sent.
    """
    kept = {key: environ[key] for key in _ENVIRON_KEPT}
    environ.clear()
    environ.update(kept)
    protocol = request.protocol
    protocol._parser = None
    protocol._messages = _NO_MESSAGES
    request._cache.clear()
    response.headers.clear()


class SocketQueue:
    """An unbounded FIFO with the part of ``asyncio.Queue``'s interface that python-engineio
    uses, in about 150 bytes while empty rather than 3 KiB.

    An ``asyncio.Queue`` holds four ``collections.deque`` (its items, getters, putters and the
    waiters of its ``join``), 760 bytes each even when empty, and every engine.io socket has one
    for as long as it lives. Here the items' deque exists only while something is queued, and
    the waiters are lists. ``_getters`` keeps ``asyncio.Queue``'s name and meaning (futures of
    the ``get`` calls waiting, and here the callbacks of ``when_put``): ``fanout.writer_idle``
    reads it to tell a writer parked on an empty queue.
    """

    __slots__ = ("_getters", "_items", "_joiners", "_unfinished")

    def __init__(self) -> None:
        self._items: collections.deque[Any] | None = None
        self._getters: list[asyncio.Future[None] | Callable[[], object]] = []
        self._joiners: list[asyncio.Future[None]] = []
        self._unfinished = 0

    def qsize(self) -> int:
        return len(self._items) if self._items else 0

    def empty(self) -> bool:
        return not self._items

    def put_nowait(self, item: Any) -> None:
        if self._items is None:
            self._items = collections.deque()
        self._items.append(item)
        self._unfinished += 1
        self._wake_getter()

    async def put(self, item: Any) -> None:
        self.put_nowait(item)

    def get_nowait(self) -> Any:
        if not self._items:
            raise asyncio.QueueEmpty
        item = self._items.popleft()
        if not self._items:
            self._items = None
        return item

    async def get(self) -> Any:
        while not self._items:
            getter = asyncio.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            except BaseException:  # as asyncio.Queue.get: pass a wake-up on to the next getter
                getter.cancel()
                with contextlib.suppress(ValueError):
                    self._getters.remove(getter)
                if self._items and not getter.cancelled():
                    self._wake_getter()
                raise
        return self.get_nowait()

    def task_done(self) -> None:
        if self._unfinished <= 0:
            raise ValueError("task_done() called too many times")
        self._unfinished -= 1
        if self._unfinished == 0:
            joiners, self._joiners = self._joiners, []
            for joiner in joiners:
                if not joiner.done():
                    joiner.set_result(None)

    async def join(self) -> None:
        if self._unfinished:
            joiner = asyncio.get_running_loop().create_future()
            self._joiners.append(joiner)
            await joiner

    def when_put(self, callback: Callable[[], object]) -> None:
        """Call ``callback`` soon after an item is put (at once if one is there), with no task
        or future waiting: it waits among the getters (``_getters`` shows it) and is woken in
        its turn."""
        if self._items:
            asyncio.get_running_loop().call_soon(callback)
            return
        self._getters.append(callback)

    def _wake_getter(self) -> None:
        while self._getters:
            getter = self._getters.pop(0)
            if not isinstance(getter, asyncio.Future):
                asyncio.get_running_loop().call_soon(getter)
                return
            if not getter.done():
                getter.set_result(None)
                return


class Pinger:
    """Every socket's next PING, sent from one task.

    python-engineio starts a task per socket after each PONG, which sleeps ``ping_interval``
    and then sends the PING: 1.4 KiB per connection, all the time. The interval is the same for
    every socket, so the sockets due are in the order they were scheduled: one deque and one
    task that sleeps until the first is due. A socket that closes meanwhile is skipped.
    """

    def __init__(self, engine: engineio.AsyncServer) -> None:
        self.engine = engine  # its ping_interval is read at each PONG: tests shorten it
        self._due: collections.deque[tuple[float, AsyncSocket]] = collections.deque()
        self._task: asyncio.Task[None] | None = None
        self.closed = False

    def schedule(self, socket: AsyncSocket) -> None:
        """PING ``socket`` in ``ping_interval`` seconds (unless the node is shutting down)."""
        if self.closed:
            return  # a PONG after shutdown must not start a task nobody awaits
        loop = asyncio.get_running_loop()
        self._due.append((loop.time() + self.engine.ping_interval, socket))
        if self._task is None:
            self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._due:
                due, socket = self._due[0]
                if due > loop.time():
                    await asyncio.sleep(due - loop.time())
                    continue
                self._due.popleft()
                if socket.closing or socket.closed:
                    continue
                socket.last_ping = time.time()
                try:
                    await socket.send(eio_packet.Packet(eio_packet.PING))
                except Exception:  # one socket's failure must not stop the others' pings
                    self.engine.logger.exception("sending a ping failed")
        finally:
            self._task = None

    async def aclose(self) -> None:
        """Stop pinging, for good (at shutdown)."""
        self.closed = True
        task = self._task
        self._due.clear()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


class _Socket(AsyncSocket):  # type: ignore[misc]
    """An Engine.IO session that an undecodable polling payload ends, and that stays small
    while idle (see the module docstring).

    The library logs a traceback for an undecodable polling payload and answers 200, so the
    client keeps going (and raising its ``EngineIOError`` instead would wait forever for a poll
    to drain the queue).
    """

    malformed = False
    last_ping: float | None  # the library's attributes, set in its __init__
    connected: bool

    async def handle_post_request(self, environ: dict[str, Any]) -> None:
        try:
            await super().handle_post_request(environ)
        except ValueError:  # a bad packet type, an empty packet, bad base64, bad UTF-8
            self.server.strike(self.sid, "malformed polling payload", fatal=True)
            self.malformed = True
            await self.close(wait=False, abort=False, reason=self.server.reason.TRANSPORT_ERROR)

    def schedule_ping(self) -> None:
        # As the library: only once the previous PING was answered (or at the start).
        if self.last_ping:
            self.last_ping = None
            self.server.pinger.schedule(self)

    async def poll(self) -> list[Any]:
        """The library's, waiting under ``asyncio.timeout`` rather than in a task of its own;
        a timeout or cancellation is ``QueueEmpty``, as there."""
        try:
            async with asyncio.timeout(self.server.ping_interval + self.server.ping_timeout):
                first = await self.queue.get()
        except (TimeoutError, asyncio.CancelledError):
            raise eio_exceptions.QueueEmpty() from None
        self.queue.task_done()
        if first is None:
            return []
        packets = [first]
        while not self.queue.empty():
            pkt = self.queue.get_nowait()
            self.queue.task_done()
            if pkt is None:  # the end: left for the next poll, after these packets
                self.queue.put_nowait(None)
                break
            packets.append(pkt)
        return packets

    async def _websocket_handler(self, ws: _WebSocket) -> None:
        """The library's websocket loops for a connection opened as a websocket: it reads in
        the handler's own task, with no task, ``wait_for`` or timer per frame waited for (the
        ping timeout ends a client that went silent: see ``close``), and its writer is a task
        only while there is something to send (``_write``). An upgrade from polling keeps the
        library's loops, probe handshake and all."""
        if self.connected:
            await super()._websocket_handler(ws)
            return
        self.connected = self.upgraded = True
        self._reading = ws
        self._park()
        try:
            while not self.closed:
                try:  # not ws.wait(): one coroutine frame fewer per idle connection
                    data = ws.text(await ws._sock.receive())
                except (OSError, asyncio.CancelledError):  # closed or refused
                    break
                if len(data) > self.server.max_http_buffer_size:
                    break
                try:
                    await self.receive(eio_packet.Packet(encoded_packet=data))
                except eio_exceptions.UnknownPacketError:
                    pass
                except eio_exceptions.SocketIsClosedError:
                    break
                except Exception:
                    self.server.logger.exception("Unknown receive error")
        finally:
            if not self._written:
                self._written = asyncio.get_running_loop().create_future()
                self.queue.put_nowait(None)  # the writer sends what is queued, then closes
                await self._written
            if ws.backed_up():  # a peer that has stopped reading: closing would wait for it
                ws.abort()
            await self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)

    async def close(self, wait: bool = True, abort: bool = False, reason: Any = None) -> None:
        """The library's; and when a websocket read here missed its PONG, the end of its queue,
        so that the writer closes it: the reader would otherwise wait for the next frame of a
        client that may never send one (the library's loop waits at most ping_interval +
        ping_timeout per frame, with a timer per connection).

        If that client has also stopped reading (the writer waits in a send for it to take
        more, or bytes wait in the transport), its connection is aborted: the end of the queue
        would wait behind that send, and a closing websocket for its close frame to be taken,
        for as long as the peer's kernel keeps the TCP connection open (it answers the window
        probes of a full receive buffer forever). The send then fails, the writer ends, and the
        reader with it.

        And a polling session's pending GET answered at once (see ``_end_poll``)."""
        polling = not (self.closing or self.closed or self.upgraded)  # and this call closes it
        if self._written is True:  # the writer has ended: nothing would take what close queues
            wait = False
        await super().close(wait=wait, abort=abort, reason=reason)
        if polling and abort:
            self._end_poll()
        if reason == self.server.reason.PING_TIMEOUT and self._reading:
            if self._writer is not None or self._reading.backed_up():
                self.cut()
            if not self._written:
                self.queue.put_nowait(None)

    def cut(self) -> None:
        """Reset the connection of a websocket read here, whatever it holds: ``close_all`` calls
        this once its bound has passed, when the close waits behind a send to a client that has
        stopped reading (see ``close``); the send fails, the writer and the reader end."""
        if self._reading:
            self._reading.abort()

    def _end_poll(self) -> None:
        """Answer the client's pending long-poll GET with a NOOP, as the reference server does
        when a polling session closes on the client's CLOSE.

        Closing with ``abort`` (the library's answer to that CLOSE) queues nothing, so the GET
        the client already has open waited ``ping_interval + ping_timeout`` (45 s) for a packet
        and was then answered 400; python-socketio's client waits for that GET before its
        ``disconnect`` returns (30 s, its own timeout), and disconnects that way after a refused
        connect and after a server-side disconnect too. A closing without ``abort`` queues a
        CLOSE, which answers the GET already. Without a pending GET the NOOP is never read: the
        session's next request is refused (it has closed) and the session forgotten.
        """
        self.queue.put_nowait(eio_packet.Packet(eio_packet.NOOP))

    #: The websocket of a connection opened as one, which ``_websocket_handler`` reads.
    _reading: _WebSocket | None = None
    #: The writer's task while it sends; None while it waits for a packet (parked as a getter
    #: of the queue, so that ``fanout.writer_idle`` sees it waiting) or once it has ended.
    _writer: asyncio.Task[None] | None = None
    #: Set when the writer has met the end of the queue (None) and closed the websocket; a
    #: future while the reader waits for that.
    _written: asyncio.Future[None] | bool = False

    def _park(self) -> None:
        """Wait for the next packet without a task: python-engineio's writer is a task per
        connection waiting on the queue all the time (1.7 KiB with its timer)."""
        self.queue.when_put(self._wake)

    def _wake(self) -> None:
        assert self._reading is not None  # parked only by the websocket read here
        self._writer = asyncio.get_running_loop().create_task(self._write(self._reading))

    async def _write(self, ws: _WebSocket) -> None:
        """Send what is queued, in order, then park; at the end of the queue (None) close the
        websocket. After a failed send it only empties the queue, as the library's writer
        closes the websocket and stops (the reader then ends, and puts the end). Cancelled (at
        shutdown) or failed, it is done too: a reader waiting for it must not wait forever."""
        failed = False
        try:
            while not self.queue.empty():
                pkt = self.queue.get_nowait()
                self.queue.task_done()
                if pkt is None:
                    await ws.close()
                    self._done_writing()
                    return
                if failed:
                    continue
                try:
                    await ws.send(pkt.encode())
                except Exception:
                    failed = True
                    await ws.close()
            self._park()
        except BaseException:
            self._done_writing()
            raise
        finally:
            self._writer = None

    def _done_writing(self) -> None:
        """The writer has ended for good: the reader, waiting for it or not, goes on to close."""
        written, self._written = self._written, True
        if isinstance(written, asyncio.Future) and not written.done():
            written.set_result(None)


class TidingsEngine(engineio.AsyncServer):  # type: ignore[misc]
    """python-engineio's server with refusals that close, counted, rather than log."""

    def __init__(self, *, websocket_compression: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        drivers: dict[str, Any] = getattr(self, "_async")  # noqa: B009 (set by the base)
        self._async = {**drivers, "websocket": _WebSocket}
        self.websocket_compression = websocket_compression
        self.pinger = Pinger(self)
        self.websockets: dict[str, web.WebSocketResponse] = {}
        self.strikes: dict[str, int] = {}
        self.malformed = 0
        self.binary = 0
        self.refused = 0

    def strike(self, sid: str, what: str, *, fatal: bool = False, binary: bool = False) -> bool:
        """Count one malformed packet of ``sid``; True when the connection must now close (at
        once for a ``binary`` one)."""
        self.malformed += 1
        if binary:
            self.binary += 1
            fatal = True
        socket = self.sockets.get(sid)
        if socket is None or socket.closed:
            return False  # already closing: nothing more to count against it
        count = self.strikes.get(sid, 0) + 1
        self.strikes[sid] = count
        self.logger.warning("malformed input from %s: %s", sid, what)
        return fatal or count >= MAX_STRIKES

    async def refuse(self, sid: str) -> None:
        """Close the connection now: its Engine.IO session, then its websocket if it has one."""
        self.refused += 1
        self.strikes.pop(sid, None)
        socket = self.sockets.get(sid)
        reading = socket._reading if isinstance(socket, _Socket) else None
        if socket is not None and not socket.closed:
            await socket.close(wait=False, abort=False, reason=self.reason.SERVER_DISCONNECT)
        websocket = self.websockets.pop(sid, None)
        if reading is not None:  # read here: closed without reading what the client still sends
            await reading.hang_up(WSCloseCode.POLICY_VIOLATION, b"malformed input")
        elif websocket is not None:  # upgraded from polling: the library's loops read it
            await websocket.close(code=WSCloseCode.POLICY_VIOLATION, message=b"malformed input")

    def create_queue(self, *args: Any, **kwargs: Any) -> SocketQueue:
        return SocketQueue()

    async def shutdown(self) -> None:
        await super().shutdown()
        await self.pinger.aclose()

    async def handle_request(self, *args: Any, **kwargs: Any) -> web.StreamResponse:
        request: web.Request = args[0]
        sid = request.query.get("sid")
        if sid is not None:
            closed = self.sockets.get(sid)
            if closed is not None and closed.closed:
                self.sockets.pop(sid, None)  # the library would raise KeyError
        socket = self.sockets.get(sid) if sid is not None else None
        try:
            response: web.StreamResponse = await super().handle_request(*args, **kwargs)
            if getattr(socket, "malformed", False):
                self.sockets.pop(sid, None)
                return web.Response(status=400, text="Malformed payload")
            opened = request.get(_WEBSOCKET)
            if opened is not None:  # its handshake is done: the handler reads it here
                eio_sid: str = opened.handler.__self__.sid
                self.websockets[eio_sid] = opened._sock
                try:
                    await opened.handler(opened)  # here, not in a method: one frame fewer
                finally:
                    self._served(eio_sid)
        except Exception:
            opened = request.get(_WEBSOCKET)
            if opened is None or not opened._sock.prepared:
                raise
            self.logger.exception("websocket handler failed")
            await opened._sock.close(code=WSCloseCode.INTERNAL_ERROR)
            prepared: web.StreamResponse = opened._sock
            return prepared  # prepared: aiohttp writes nothing more
        return response

    def _served(self, sid: str) -> None:
        """The websocket of ``sid`` has closed: forget it, and its socket if that has closed
        too, as the library does after its handler."""
        self.websockets.pop(sid, None)
        socket = self.sockets.get(sid)
        if socket is not None and socket.closed:
            del self.sockets[sid]

    async def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event == "connect" and args:
            socket = self.sockets.get(args[0])
            if type(socket) is AsyncSocket:  # the library makes it; see _Socket for why
                socket.__class__ = _Socket
        elif event == "disconnect" and args:
            self.strikes.pop(args[0], None)
        return await super()._trigger_event(event, *args, **kwargs)


class TidingsServer(socketio.AsyncServer):  # type: ignore[misc]
    """python-socketio's server without binary events, its decoding failures counted."""

    eio: TidingsEngine

    def __init__(self, *, throttle: FailureThrottle | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.throttle = throttle
        self.connects_refused: Counter[str] = Counter()

    def _engineio_server_class(self) -> type[TidingsEngine]:
        return TidingsEngine

    async def _trigger_event(self, event: str, namespace: str, *args: Any) -> Any:
        """A connect (``sid, environ, auth``) is counted, and one with a token is throttled."""
        if event != "connect" or len(args) < 2:
            return await super()._trigger_event(event, namespace, *args)
        request: web.Request = args[1]["aiohttp.request"]
        address = request.remote or ""
        auth = args[2] if len(args) > 2 else None
        throttle = self.throttle if isinstance(auth, dict) and "token" in auth else None
        try:
            if throttle is not None and (wait := throttle.retry_after(address)) > 0:
                throttle.refused["socketio"] += 1
                retry_after = {"retry_after": wait}
                raise socketio.exceptions.ConnectionRefusedError("rate_limited", retry_after)
            return await super()._trigger_event(event, namespace, *args)
        except socketio.exceptions.ConnectionRefusedError as exc:
            reason = exc.error_args.get("message")
            self.connects_refused[reason if reason in CONNECT_REFUSALS else "other"] += 1
            if throttle is not None and reason == "unauthorized":
                throttle.failed(address)
            raise

    async def _handle_eio_message(self, eio_sid: str, data: object) -> None:
        eio = self.eio
        if not isinstance(data, str):
            eio.strike(eio_sid, "binary message", binary=True)
            await eio.refuse(eio_sid)
            return
        try:
            pkt = self.packet_class(encoded_packet=data)
        except Exception:
            if eio.strike(eio_sid, "undecodable Socket.IO packet"):
                await eio.refuse(eio_sid)
            return
        kind = pkt.packet_type
        if kind in (sio_packet.BINARY_EVENT, sio_packet.BINARY_ACK):
            eio.strike(eio_sid, "binary Socket.IO packet", binary=True)
            await eio.refuse(eio_sid)
            return
        namespace = pkt.namespace or "/"
        connected = self.manager.sid_from_eio_sid(eio_sid, namespace) is not None
        if kind == sio_packet.CONNECT and not connected:
            await self._handle_connect(eio_sid, pkt.namespace, pkt.data)
        elif kind == sio_packet.DISCONNECT:
            await self._handle_disconnect(eio_sid, pkt.namespace, self.reason.CLIENT_DISCONNECT)
        elif kind == sio_packet.EVENT and connected and _is_event(pkt.data):
            await self._handle_event(eio_sid, pkt.namespace, pkt.id, pkt.data)
        elif kind == sio_packet.ACK and connected and isinstance(pkt.data, list):
            await self._handle_ack(eio_sid, pkt.namespace, pkt.id, pkt.data)
        elif eio.strike(eio_sid, f"unexpected Socket.IO packet of type {kind!r}"):
            await eio.refuse(eio_sid)


def _is_event(data: object) -> bool:
    return isinstance(data, list) and bool(data) and isinstance(data[0], str)
