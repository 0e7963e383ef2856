"""Local delivery: each event encoded once per node, the same frame bytes to every socket.

Listeners. Every event a node delivers passes through ``emit`` (the Socket.IO server calls it)
or ``deliver`` (a Redis channel), and in-process listeners of the same rooms (the SSE streams)
get a copy, so a stream sees exactly what a socket in that room would. ``watch`` and
``unwatch`` are where a manager that feeds rooms from elsewhere (``RedisManager``) learns which
rooms have local watchers.

Pre-encoded fan-out. python-socketio encodes an event once but then starts a task per socket,
which puts the packet on the socket's queue, whose writer task writes it as a websocket frame.
Here the frame itself (header and payload) is built once, and written straight to the TCP
transport of every socket that is ready for it: a websocket from its first request (so its
initial request's transport is the websocket's), whose engine.io writer is idle, waiting on an
empty queue (so nothing of its own is queued or half-written), and whose transport buffer is
below ``HIGH_WATER``. Every other socket (polling, upgraded from polling, busy, backed up)
takes its queue. A delivery never awaits, so two events reach every socket in the order they
were delivered, whichever path each took.

Forwarded, not decoded. An event that arrives as JSON text (a Redis channel's ``EventText``)
goes into its packet by concatenation; it is decoded only for what needs the object: a
listener, or a socket on the queued path (its ``Backlog`` cuts by job and may build a
``job_batch``). So a node that only forwards pays neither a JSON decode nor an encode.

Bounded backlogs. On the queued path a socket's job events wait in one ``Backlog`` packet at the
end of its queue rather than one packet each: when its writer takes it, it goes out as the event
itself if it is alone, else as one ``job_batch`` frame. Past ``MAX_BACKLOG_EVENTS`` events or
``MAX_BACKLOG_BYTES`` bytes only each job's newest event is kept: the client sees the gap and
catches up from ``since``, as the protocol's client rule says. So a stalled reader costs at most
one event per job it watches, however long it stalls.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import weakref
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import socketio
from engineio import packet as eio_packet
from socketio import packet
from tidings.constants import NAMESPACE

#: Events a slow listener may fall behind before it is told to catch up from the store.
LISTENER_QUEUE = 1000
#: Bytes waiting in a socket's transport above which it takes the queued path.
HIGH_WATER = 64 * 1024
#: A socket's waiting events, in number or encoded bytes, past which only each job's newest
#: event is kept.
MAX_BACKLOG_EVENTS = 500
MAX_BACKLOG_BYTES = 1024 * 1024
JOB_EVENTS = frozenset({"job_update", "job_complete", "job_error"})


class EventText:
    """An event's data as the JSON text it arrived in: forwarded as it is, decoded once, and
    only when something needs the object (see the module docstring)."""

    __slots__ = ("_value", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._value: Any = _UNDECODED

    @property
    def value(self) -> Any:
        if self._value is _UNDECODED:
            self._value = json.loads(self.text)
        return self._value


_UNDECODED = object()


def plain(data: Any) -> Any:
    """The event's data as an object, whether it arrived as one or as ``EventText``."""
    return data.value if isinstance(data, EventText) else data


class Listener:
    """Events of some rooms, in delivery order; ``overflowed`` when some were dropped."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue(LISTENER_QUEUE)
        self.overflowed = False

    def put(self, event: str, data: Any) -> None:
        try:
            self.queue.put_nowait((event, data))
        except asyncio.QueueFull:
            self.overflowed = True

    async def get(self) -> tuple[str, Any]:
        return await self.queue.get()


class FanoutManager(socketio.AsyncManager):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self._listeners: dict[str, set[Listener]] = defaultdict(set)
        self.direct = 0  # deliveries written straight to a transport
        self.queued = 0  # deliveries put on a socket's queue
        self.cut = 0  # backlogs cut to each job's newest event
        self._backlogs: weakref.WeakKeyDictionary[Any, Backlog] = weakref.WeakKeyDictionary()
        #: By engine.io sid: the TCP transport of its websocket when that was its first
        #: request, else None; looked up once per socket, dropped when it disconnects.
        self._wires: dict[str, Any] = {}

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        self._wires.pop(self.eio_sid_from_sid(sid, namespace), None)
        super().basic_disconnect(sid, namespace, **kwargs)

    # A socket's own room. python-socketio puts every socket in a room named after its sid,
    # a ``bidict`` each (0.4 KiB per connection) mapping what the namespace's room of every
    # socket (``None``) maps already: here it is not stored, and read from that one.

    def basic_enter_room(
        self, sid: str, namespace: str, room: Any, eio_sid: str | None = None
    ) -> None:
        if room != sid:
            super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)

    def basic_leave_room(self, sid: str, namespace: str, room: Any) -> None:
        if room != sid:
            super().basic_leave_room(sid, namespace, room)

    def get_participants(self, namespace: str, room: Any) -> Iterator[tuple[str, str]]:
        rooms = self.rooms.get(namespace, {})
        everyone = rooms.get(None, {})
        participants: dict[str, str] = {}
        several = hasattr(room, "__len__") and not isinstance(room, str)  # as the library
        for name in room if several else [room]:
            if name in rooms:
                participants.update(rooms[name]._fwdm)
            elif name in everyone:  # a socket's own room
                participants[name] = everyone[name]
        yield from participants.items()

    def get_rooms(self, sid: str, namespace: str) -> list[Any]:
        own = [sid] if sid in self.rooms.get(namespace, {}).get(None, {}) else []
        return own + list(super().get_rooms(sid, namespace))

    async def watch(self, room: Any) -> None:
        """A local watcher joined ``room``: return once the room's events reach this node."""

    def unwatch(self, room: Any) -> None:
        """A local watcher left ``room`` (it may still have others)."""

    @contextlib.asynccontextmanager
    async def listen(self, rooms: Iterable[str]) -> AsyncIterator[Listener]:
        """Receive what this node delivers to these rooms, each event once, until the block
        ends; entered once every room's events reach this node, so a read after it misses
        nothing."""
        listener = Listener()
        names = list(rooms)
        for room in names:
            self._listeners[room].add(listener)
        try:
            for room in names:
                await self.watch(room)
            yield listener
        finally:
            for room in names:
                self._listeners[room].discard(listener)
                if not self._listeners[room]:
                    del self._listeners[room]
                self.unwatch(room)

    async def deliver(
        self, event: str, data: Any, room: str, *, besides: str | None = None
    ) -> None:
        """Deliver to this node's watchers of ``room`` that do not also watch ``besides``."""
        listeners = self._listeners.get(room, set())
        if besides is not None and besides in self._listeners:
            listeners = listeners - self._listeners[besides]
        for listener in listeners:
            listener.put(event, plain(data))
        skip = set()
        if besides is not None:
            skip = {sid for sid, _ in self.get_participants(NAMESPACE, besides)}
        self._send(event, data, NAMESPACE, room, skip)

    async def emit(
        self,
        event: str,
        data: Any,
        namespace: str | None = None,
        room: Any = None,
        skip_sid: Any = None,
        callback: Any = None,
        to: Any = None,
        **kwargs: Any,
    ) -> Any:
        room = to or room
        namespace = namespace or NAMESPACE
        if callback is not None:  # a packet of its own per socket, for the ack id
            return await super().emit(
                event, data, namespace, room=room, skip_sid=skip_sid, callback=callback, **kwargs
            )
        if self._listeners and room is not None:
            rooms = [room] if isinstance(room, str) else list(room)
            reached: set[Listener] = set()
            for name in rooms:
                reached.update(self._listeners.get(name, ()))
            for listener in reached:
                listener.put(event, data)
        skip = set(skip_sid) if isinstance(skip_sid, list) else {skip_sid}
        self._send(event, data, namespace, room, skip)
        return None

    def _send(self, event: str, data: Any, namespace: str, room: Any, skip: set[Any]) -> None:
        """Encode once, then for each socket write the frame or queue the packet (see the
        module docstring); never awaits, so deliveries never interleave."""
        if namespace not in self.rooms:
            return
        encoded: str | list[Any]
        if isinstance(data, EventText):
            encoded = event_packet(namespace, event, data.text)
        else:
            args = list(data) if isinstance(data, tuple) else [] if data is None else [data]
            encoded = self.server.packet_class(
                packet.EVENT, namespace=namespace, data=[event, *args]
            ).encode()
        attachments = isinstance(encoded, list)  # binary data: several engine.io packets
        frame: bytes | None = None
        batched: bool | None = None  # known once a socket takes the queued path
        eio_sockets = self.server.eio.sockets
        wires = self._wires
        for sid, eio_sid in self.get_participants(namespace, room):
            if sid in skip:
                continue
            socket = eio_sockets.get(eio_sid)
            if socket is None or socket.closed:
                continue
            transport = None
            if not attachments:
                wire = wires[eio_sid] if eio_sid in wires else self._wire(eio_sid)
                transport = ready_transport(socket, wire)
            if transport is not None:
                if frame is None:
                    frame = text_frame(eio_packet.Packet(eio_packet.MESSAGE, encoded).encode())
                transport.write(frame)
                self.direct += 1
                continue
            self.queued += 1
            if batched is None:
                data = plain(data)
                batched = (
                    not attachments
                    and event in JOB_EVENTS
                    and isinstance(data, dict)
                    and isinstance(data.get("job_id"), str)
                )
            backlog = self._backlogs.get(socket)
            if batched:
                assert isinstance(encoded, str)
                if backlog is None or backlog.sealed:
                    backlog = self._backlogs[socket] = Backlog(self.server.packet_class, namespace)
                    socket.queue.put_nowait(backlog)
                self.cut += backlog.add(event, data, encoded)
                continue
            if backlog is not None:
                del self._backlogs[socket]  # what comes after this packet goes after it
            for part in encoded if attachments else [encoded]:
                socket.queue.put_nowait(eio_packet.Packet(eio_packet.MESSAGE, part))

    def _wire(self, eio_sid: str) -> Any:
        """The transport a frame for this socket may be written to (see ``_wires``): a
        socket upgraded from polling has its first request's, which is not the websocket's."""
        environ = self.server.environ.get(eio_sid) or {}
        request = environ.get("aiohttp.request")
        if "transport=websocket" not in environ.get("QUERY_STRING", "") or request is None:
            wire = None
        else:
            wire = request.transport
        self._wires[eio_sid] = wire
        return wire


def event_packet(namespace: str, event: str, text: str) -> str:
    """The Socket.IO EVENT packet of ``event`` with the JSON ``text`` as its one argument,
    as ``Packet.encode`` writes it (a namespace other than ``/`` is named); ``event`` is one
    of ``JOB_EVENTS``, which JSON writes as they are."""
    named = "" if namespace == "/" else namespace + ","
    return f'{packet.EVENT}{named}["{event}",{text}]'


def ready_transport(socket: Any, wire: Any) -> Any:
    """``wire``, the socket's websocket transport, when a frame may be written to it now;
    None for the queued path."""
    if wire is None or not socket.upgraded or socket.upgrading or socket.closing:
        return None
    if not writer_idle(socket) or wire.is_closing():
        return None
    if wire.get_write_buffer_size() > HIGH_WATER:
        return None
    return wire


def writer_idle(socket: Any) -> bool:
    """The socket's engine.io writer waits on an empty queue: nothing queued, nothing of an
    earlier batch still to be written (it polls again only after writing a whole batch)."""
    queue: asyncio.Queue[Any] = socket.queue
    return queue.empty() and bool(getattr(queue, "_getters", None))


def text_frame(payload: str) -> bytes:
    """An unmasked, final websocket text frame (RFC 6455 5.2), as a server sends it."""
    body = payload.encode()
    size = len(body)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 65536:
        header = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return header + body


class Backlog(eio_packet.Packet):  # type: ignore[misc]
    """Job events waiting at the end of one socket's queue, encoded when its writer takes them
    (see the module docstring). Nothing is added once it is encoded (``sealed``)."""

    def __init__(self, packet_class: Any, namespace: str) -> None:
        super().__init__(eio_packet.MESSAGE)
        self.packet_class = packet_class
        self.namespace = namespace
        self.events: list[tuple[str, Any, str]] = []  # name, Event, its packet as encoded
        self.size = 0
        self.newest: dict[str, tuple[str, Any, str]] | None = None  # once cut: by job

    @property
    def sealed(self) -> bool:
        return self.encode_cache is not None

    def add(self, event: str, data: dict[str, Any], encoded: str) -> bool:
        """Hold one more event; True when that cut the backlog to each job's newest event."""
        item = (event, data, encoded)
        if self.newest is not None:
            self.newest.pop(data["job_id"], None)
            self.newest[data["job_id"]] = item
            return False
        self.events.append(item)
        self.size += len(encoded)
        if len(self.events) <= MAX_BACKLOG_EVENTS and self.size <= MAX_BACKLOG_BYTES:
            return False
        self.newest = {}
        for held in self.events:
            self.newest.pop(held[1]["job_id"], None)
            self.newest[held[1]["job_id"]] = held
        self.events, self.size = [], 0
        return True

    def encode(self, b64: bool = False) -> Any:
        if self.encode_cache is None:
            items = self.events if self.newest is None else list(self.newest.values())
            if len(items) == 1:
                self.data = items[0][2]  # the event alone, as it was encoded for everyone
            else:
                batch = {"events": [data for _, data, _ in items]}
                self.data = self.packet_class(
                    packet.EVENT, namespace=self.namespace, data=["job_batch", batch]
                ).encode()
            self.events, self.newest = [], None
        return super().encode(b64)
