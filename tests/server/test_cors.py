"""Browser origins: same origin by default, widened only by TIDINGS_CORS_ORIGINS."""

from __future__ import annotations

import aiohttp
import pytest
from tidings import Settings

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


async def test_http_api_and_streams_answer_listed_origins_only() -> None:
    settings = Settings(cors_origins=["http://app.example"])
    async with running_app(settings) as (url, _), aiohttp.ClientSession() as session:
        preflight = await session.options(
            f"{url}/api/jobs",
            headers={
                "Origin": "http://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "Authorization",
            },
        )
        assert preflight.status == 204
        assert preflight.headers["Access-Control-Allow-Origin"] == "http://app.example"
        assert "Authorization" in preflight.headers["Access-Control-Allow-Headers"]
        listed = await session.get(
            f"{url}/api/jobs/missing", headers={"Origin": "http://app.example"}
        )
        assert listed.status == 404  # errors carry the headers too, so a page can read them
        assert listed.headers["Access-Control-Allow-Origin"] == "http://app.example"
        assert listed.headers["Access-Control-Expose-Headers"] == "Retry-After"  # for a 429
        other = await session.get(f"{url}/api/jobs", headers={"Origin": "http://evil.example"})
        assert "Access-Control-Allow-Origin" not in other.headers
        for response in (preflight, listed, other):
            response.release()


async def test_no_cors_headers_by_default() -> None:
    async with running_app(Settings()) as (url, _), aiohttp.ClientSession() as session:
        response = await session.get(f"{url}/api/jobs", headers={"Origin": "http://a.example"})
        assert "Access-Control-Allow-Origin" not in response.headers
        response.release()
