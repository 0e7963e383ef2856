"""A Socket.IO connection without a Socket.IO library, for many cheap clients in one process.

The benchmark's load client (``bench/loadclient.py``) and the fault suite's fleet
(``tests/chaos/fleet.py``) hold thousands of connections each; a client library's per-socket
tasks and timers would cost more than the server they measure. Each connection speaks Engine.IO
v4 / Socket.IO v5 text framing over one aiohttp websocket: ``0{...}`` open, ``40`` connect to the
namespace (answered ``40{...}``), ``42["event",data]`` an event and ``42N[...]`` one asking for
ack ``43N[...]``, ping ``2`` answered ``3``; ``1`` (close) or ``41`` (namespace disconnect) ends it.

It lives under ``tests/`` because the fleet is part of the suite; ``bench/`` is not a package,
and its scripts import from ``tests`` already (``tests.support``).
"""

from __future__ import annotations

import asyncio
import sys

import aiohttp

ENGINE_IO = "/socket.io/?EIO=4&transport=websocket"


class Gone(Exception):
    """The connection, or its namespace, ended (or never began)."""


async def connect(session: aiohttp.ClientSession, url: str) -> aiohttp.ClientWebSocketResponse:
    """A websocket to the server at ``url`` (``http://host:port``), connected to the namespace;
    Gone when the server refuses."""
    ws = await session.ws_connect(
        url.replace("http", "ws", 1) + ENGINE_IO, heartbeat=None, compress=0
    )
    try:
        opened = await receive(ws)
        if not opened.startswith("0{"):
            raise Gone(f"expected an Engine.IO open packet, got {opened[:80]!r}")
        await ws.send_str("40")
        reply = await receive(ws)
        if not reply.startswith("40"):
            raise Gone(f"namespace connect refused: {reply[:200]!r}")
    except BaseException:
        await ws.close()
        raise
    return ws


async def receive(ws: aiohttp.ClientWebSocketResponse) -> str:
    """The next packet that is not a ping (pings are answered on the way); Gone at the end."""
    while True:
        message = await ws.receive()
        if message.type is not aiohttp.WSMsgType.TEXT:
            raise Gone(str(message.type))
        data: str = message.data
        if data == "2":
            await ws.send_str("3")
            continue
        if data.startswith("1") or data.startswith("41"):
            raise Gone(data)
        return data


async def stdin() -> asyncio.StreamReader:
    """The process's standard input, read on the loop: its parent's commands (``go``, ``quit``)."""
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader
