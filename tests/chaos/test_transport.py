"""Hostile Socket.IO and Engine.IO traffic, while another user watches a job on the same node.

Rows of issue 14: a binary event header announcing 999,999,999 attachments, then binary frames
(+180 MB, kept while the socket lived); 15 KB of ``42[`` on a socket that never connected a
namespace (16.7 MB of log, 10,000 tracebacks); malformed payloads on a websocket (an HTTP 500
reply written into the websocket stream); a frame of exactly the advertised ``maxPayload``
(refused); a POST to a polling session the server had closed (500, ``KeyError``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import aiohttp
import pytest

from tests.chaos.support import (
    RawWebSocket,
    control,
    cpu_seconds,
    log_since,
    log_size,
    node,
    rss,
)
from tests.support import ServerProcess, engine_io_poll

MAX_PAYLOAD = 64 * 1024
#: Log a node may write about one hostile connection, however much garbage it sends.
LOG_BOUND = 4096
MB = 1024 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with node(tmp_path_factory.mktemp("transport")) as running:
        yield running


async def _connected(url: str) -> RawWebSocket:
    """A raw websocket past the Engine.IO open and the Socket.IO connect of ``/``."""
    socket = await RawWebSocket.open(url)
    frames = await socket.frames(10, until=lambda payload: payload.startswith(b"0{"))
    opened = json.loads(frames[0][1].decode()[1:])
    assert opened["maxPayload"] == MAX_PAYLOAD
    assert await socket.send("40")
    frames = await socket.frames(10, until=lambda payload: payload.startswith(b"40{"))
    assert frames and frames[-1][1].startswith(b"40{"), frames
    return socket


async def test_a_binary_event_header_closes_the_connection_at_once(
    server: ServerProcess,
) -> None:
    assert server.process is not None
    before = rss(server.process.pid)
    async with control(server.url):
        socket = await _connected(server.url)
        header = '45999999999-["subscribe",{"_placeholder":true,"num":0}]'
        assert await socket.send(header)
        sent = 0
        attachment = b"x" * 60_000  # within maxPayload: refused for being binary, not large
        while sent < 40 * MB and await socket.send(attachment):
            sent += len(attachment)
        closed = await socket.closed_by_server(5)
        await socket.close()
    grown = rss(server.process.pid) - before
    print(f"\nsent {sent / MB:.1f} MB of attachments before the close; RSS +{grown / MB:.1f} MB")
    assert closed, "the server kept a socket that announced binary attachments"
    assert sent < 40 * MB  # the unfixed server took all of it, and kept it
    assert grown < 32 * MB


async def test_garbage_on_a_socket_costs_a_counter_and_closes_it(server: ServerProcess) -> None:
    assert server.process is not None
    log_before, cpu_before = log_size(server), cpu_seconds(server.process.pid)
    async with control(server.url):
        socket = await RawWebSocket.open(server.url)
        await socket.frames(10, until=lambda p: p.startswith(b"0{"))  # no Socket.IO connect
        packets = 0
        while packets < 5000 and await socket.send("42["):  # 15 KB of 3-byte packets
            packets += 1
        closed = await socket.closed_by_server(5)
        await socket.close()
    logged = log_since(server, log_before)
    cpu = cpu_seconds(server.process.pid) - cpu_before
    print(f"\n{packets} packets sent; {len(logged)} bytes of log; {cpu:.2f} s CPU:\n{logged}")
    assert closed, "the server kept reading garbage from a socket"
    assert len(logged) < LOG_BOUND, logged[-2000:]


async def test_connecting_again_and_again_closes_the_connection(server: ServerProcess) -> None:
    """Each CONNECT opened one more session of the namespace on the same connection."""
    async with control(server.url):
        socket = await _connected(server.url)
        sent = 0
        while sent < 2000 and await socket.send("40"):
            sent += 1
        closed = await socket.closed_by_server(5)
        await socket.close()
    assert closed, "the server took every CONNECT on one connection"


@pytest.mark.parametrize("garbage", ["", "x", "b!!", "9"])
async def test_no_http_reply_is_written_into_a_websocket(
    server: ServerProcess, garbage: str
) -> None:
    async with control(server.url):
        socket = await RawWebSocket.open(server.url)
        await socket.frames(10, until=lambda p: p.startswith(b"0{"))  # the Engine.IO open
        for _ in range(3):
            await socket.send(garbage)
        closed = await socket.closed_by_server(5)
        await socket.close()
    assert b"HTTP/1.1" not in socket.raw, socket.raw[-300:]
    assert closed


@pytest.mark.parametrize(("size", "accepted"), [(MAX_PAYLOAD, True), (MAX_PAYLOAD + 1, False)])
async def test_the_advertised_payload_limit_is_the_enforced_one(
    server: ServerProcess, size: int, accepted: bool
) -> None:
    """A frame of exactly ``maxPayload`` bytes is answered; one byte more closes the socket."""
    socket = await _connected(server.url)
    head, tail = '421["list_jobs",{"pad":"', '"}]'
    frame = head + "a" * (size - len(head) - len(tail)) + tail
    assert len(frame.encode()) == size
    await socket.send(frame)
    frames = await socket.frames(5, until=lambda payload: payload.startswith(b"431"))
    await socket.close()
    if accepted:
        assert not socket.ended
    acks = [payload for _, payload in frames if payload.startswith(b"431")]
    if accepted:
        assert acks and b"invalid_request" in acks[0], frames
    else:
        assert not acks and socket.ended, frames


async def test_a_post_to_a_closed_polling_session_is_a_clean_400(server: ServerProcess) -> None:
    async with aiohttp.ClientSession() as session:
        _, opened = await engine_io_poll(session, server.url, "GET")
        sid = json.loads(opened.decode()[1:])["sid"]
        assert await engine_io_poll(session, server.url, "POST", sid, b"40") == (
            200,
            b"OK",
        )  # control
        assert (await engine_io_poll(session, server.url, "POST", sid, b"1"))[
            0
        ] == 200  # client close
        status, body = await engine_io_poll(session, server.url, "POST", sid, b"40")
    assert status == 400, body


async def test_a_malformed_polling_payload_ends_its_session(server: ServerProcess) -> None:
    log_before = log_size(server)
    async with aiohttp.ClientSession() as session:
        _, opened = await engine_io_poll(session, server.url, "GET")
        sid = json.loads(opened.decode()[1:])["sid"]
        statuses = [
            (await engine_io_poll(session, server.url, "POST", sid, b"x"))[0] for _ in range(20)
        ]
    assert statuses == [400] * 20, statuses
    logged = log_since(server, log_before)
    assert len(logged) < LOG_BOUND, logged[-2000:]
