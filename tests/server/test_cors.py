"""Browser origins: same origin by default, widened only by TIDINGS_CORS_ORIGINS."""

from __future__ import annotations

import aiohttp
import pytest

from server import Settings
from tests.support import running_app

HANDSHAKE = "/socket.io/?EIO=4&transport=polling"


@pytest.mark.parametrize(
    ("origins", "origin", "allowed"),
    [
        ([], "http://evil.example", False),
        ([], None, True),  # not a browser: no Origin header
        (["http://app.example"], "http://app.example", True),
        (["http://app.example"], "http://evil.example", False),
        (["*"], "http://anywhere.example", True),
    ],
)
async def test_socket_handshake_origin_policy(
    origins: list[str], origin: str | None, allowed: bool
) -> None:
    async with running_app(Settings(cors_origins=origins)) as (url, _):
        headers = {"Origin": origin} if origin else {}
        async with (
            aiohttp.ClientSession() as session,
            session.get(url + HANDSHAKE, headers=headers) as response,
        ):
            assert (response.status == 200) is allowed
            if allowed and origin:
                assert response.headers["Access-Control-Allow-Origin"] in (origin, "*")


async def test_same_origin_is_allowed_by_default() -> None:
    async with running_app(Settings()) as (url, _), aiohttp.ClientSession() as session:
        response = await session.get(url + HANDSHAKE, headers={"Origin": url})
        assert response.status == 200
        response.release()
