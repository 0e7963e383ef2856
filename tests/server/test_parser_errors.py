"""What aiohttp's HTTP parser refuses, before any application code runs, is answered in JSON.

Raw bytes over a socket to a real ``tidings serve``: a request line that is no request line, a
header line over aiohttp's 8190 bytes, a byte no header may hold. The control sends the same
bytes to the same application behind aiohttp's own ``web.AppRunner``: its plain-text 400 fails
the check, so the check would catch a node that lost ``JsonErrorRunner`` (or an aiohttp that
moved the points it hooks).
"""

from __future__ import annotations

import asyncio
import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from tidings import Settings

from tests.support import ServerProcess, running_app, server_process

REFUSED = {
    "bad-request-line": b"NOT AN HTTP REQUEST\r\n\r\n",
    "over-long-header": b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 20_000 + b"\r\n\r\n",
    "invalid-header-chars": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-B\x01d: a\x00b\r\n\r\n",
}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with server_process(log=Path(tmp_path_factory.mktemp("parser")) / "node.log") as running:
        yield running


async def _send(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-cased names) and body of the reply; the server closes after it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        reply = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    head, _, body = reply.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value.strip() for name, _, value in (x.partition(":") for x in lines)}
    return int(status_line.split()[1]), headers, body


def check_json_error(status: int, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    assert status == 400, (status, body[:200])
    assert headers.get("content-type", "").startswith("application/json"), (
        f"not JSON: has aiohttp moved what server/web/runner.py hooks? {headers} {body[:200]!r}"
    )
    answer = json.loads(body)
    assert answer["error"]["code"] == "invalid_request", answer
    assert set(answer["error"]) == {"code", "message"}, answer
    message = answer["error"]["message"]
    assert isinstance(message, str) and message.endswith("."), answer
    return dict(answer)


def test_the_aiohttp_points_the_runner_hooks_are_there() -> None:
    """What ``JsonErrorRunner`` overrides, by name and signature: a rename fails here, loudly."""
    assert inspect.iscoroutinefunction(web.AppRunner._make_server)
    parameters = list(inspect.signature(RequestHandler.handle_error).parameters)
    assert parameters == ["self", "request", "status", "exc", "message"]
    assert callable(web.Server) and "__call__" in vars(web.Server)


@pytest.mark.parametrize("request_bytes", REFUSED.values(), ids=REFUSED.keys())
async def test_what_the_parser_refuses_is_a_json_400(
    node: ServerProcess, request_bytes: bytes
) -> None:
    answer = check_json_error(*await _send(node.port, request_bytes))
    assert "\x00" not in answer["error"]["message"]  # the client's bytes are not echoed
    assert "aaaa" not in answer["error"]["message"]


@pytest.mark.parametrize("request_bytes", REFUSED.values(), ids=REFUSED.keys())
async def test_the_check_catches_aiohttp_plain_text_reply(request_bytes: bytes) -> None:
    async with running_app(Settings()) as (url, _):  # aiohttp's own runner
        status, headers, body = await _send(int(url.rsplit(":", 1)[1]), request_bytes)
    assert status == 400
    assert headers["content-type"].startswith("text/plain")
    with pytest.raises(AssertionError):
        check_json_error(status, headers, body)
