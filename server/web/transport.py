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
- **Wrong tokens at connect spend the HTTP API's budget.** A connect refused ``unauthorized``
  takes from its address's bucket of the ``FailureThrottle`` that answers HTTP 429; while that is
  empty, a connect with a token is refused ``rate_limited``. One budget per address, whichever
  way the guesses come.

What each refusal counts (``malformed``, ``binary``, ``refused``, ``connects_refused``) is read
by ``/metrics``.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import Any, Final

import engineio
import socketio
from aiohttp import WSCloseCode, web
from engineio.async_drivers import aiohttp as aiohttp_driver
from engineio.async_socket import AsyncSocket
from socketio import packet as sio_packet
from tidings.web.api import FailureThrottle

__all__ = ["LOG_INTERVAL", "MAX_STRIKES", "QuietLogger", "TidingsEngine", "TidingsServer"]

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
_WEBSOCKET: Final = web.RequestKey("tidings_websocket", web.WebSocketResponse)


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
        request: web.Request = environ["aiohttp.request"]
        engine: TidingsEngine = self.server
        sid: str = self.handler.__self__.sid
        self._sock = web.WebSocketResponse(
            max_msg_size=engine.max_http_buffer_size + 1, timeout=CLOSE_TIMEOUT
        )
        request[_WEBSOCKET] = self._sock
        await self._sock.prepare(request)
        self.environ = environ
        engine.websockets[sid] = self._sock
        try:
            await self.handler(self)
        finally:
            engine.websockets.pop(sid, None)
        return self._sock

    async def wait(self) -> str:
        """The next text frame; ``OSError`` (the library's "closed") for anything else.

        A binary frame is a binary Engine.IO message, which the protocol has no use for; an
        empty frame or one that is no Engine.IO packet would raise inside the library's loop.
        """
        message = await self._sock.receive()
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


class _PollingSocket(AsyncSocket):  # type: ignore[misc]
    """An Engine.IO session that an undecodable polling payload ends.

    The library logs a traceback for such a payload and answers 200, so the client keeps going
    (and raising its ``EngineIOError`` instead would wait forever for a poll to drain the queue).
    """

    malformed = False

    async def handle_post_request(self, environ: dict[str, Any]) -> None:
        try:
            await super().handle_post_request(environ)
        except ValueError:  # a bad packet type, an empty packet, bad base64, bad UTF-8
            self.server.strike(self.sid, "malformed polling payload", fatal=True)
            self.malformed = True
            await self.close(wait=False, abort=False, reason=self.server.reason.TRANSPORT_ERROR)


class TidingsEngine(engineio.AsyncServer):  # type: ignore[misc]
    """python-engineio's server with refusals that close, counted, rather than log."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        drivers: dict[str, Any] = getattr(self, "_async")  # noqa: B009 (set by the base)
        self._async = {**drivers, "websocket": _WebSocket}
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
        if socket is not None and not socket.closed:
            await socket.close(wait=False, abort=False, reason=self.reason.SERVER_DISCONNECT)
        websocket = self.websockets.pop(sid, None)
        if websocket is not None:
            await websocket.close(code=WSCloseCode.POLICY_VIOLATION, message=b"malformed input")

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
        except Exception:
            websocket = request.get(_WEBSOCKET)
            if websocket is None or not websocket.prepared:
                raise
            self.logger.exception("websocket handler failed")
            await websocket.close(code=WSCloseCode.INTERNAL_ERROR)
            prepared: web.StreamResponse = websocket
            return prepared  # prepared: aiohttp writes nothing more
        return response

    async def _trigger_event(self, event: str, *args: Any, **kwargs: Any) -> Any:
        if event == "connect" and args:
            socket = self.sockets.get(args[0])
            if type(socket) is AsyncSocket:  # the library makes it; this one refuses garbage
                socket.__class__ = _PollingSocket
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
