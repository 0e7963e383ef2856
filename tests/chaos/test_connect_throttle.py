"""Wrong tokens on Socket.IO connect spend the same per-address budget as wrong HTTP credentials.

The node allows 5 wrong credentials per address and refills one every 100 s. From an attacker's
address, over each transport: five connects with a wrong token are refused ``unauthorized``;
then connects with a token, wrong or right, are refused ``rate_limited``, and the same address
gets 429 over HTTP (one budget). The control: the right token from another address still
connects. The unfixed node answered every guess ``unauthorized``, for ever.
"""

from __future__ import annotations

from collections.abc import Iterator

import aiohttp
import jwt
import pytest

from tests.chaos.support import node, socketio_connect
from tests.support import ServerProcess

SECRET = "chaos-connect-secret-0123456789-0123456789"
BURST = 5
RIGHT = jwt.encode({"sub": "alice", "exp": 4_000_000_000}, SECRET, "HS256")
WRONG = jwt.encode(
    {"sub": "alice", "exp": 4_000_000_000}, "not-the-secret-0123456789-0123456789", "HS256"
)
#: An attacker address per transport, so that each starts with a full bucket.
ATTACKERS = {"websocket": "127.0.0.6", "polling": "127.0.0.7"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "TIDINGS_SECRET": SECRET,
        "TIDINGS_AUTH_FAILURE_BURST": str(BURST),
        "TIDINGS_AUTH_FAILURE_RATE": "0.01",
    }
    with node(tmp_path_factory.mktemp("connect"), **env) as running:
        yield running


@pytest.mark.parametrize("transport", ATTACKERS)
async def test_wrong_tokens_at_connect_are_rate_limited_per_address(
    server: ServerProcess, transport: str
) -> None:
    attacker = ATTACKERS[transport]

    async def connect(token: str, address: str = attacker) -> object:
        return await socketio_connect(server.url, {"token": token}, transport, address)

    for _ in range(BURST):
        assert await connect(WRONG) == {"message": "unauthorized"}
    refused = await connect(WRONG)
    assert isinstance(refused, dict) and refused["message"] == "rate_limited", refused
    assert refused["data"]["retry_after"] >= 1, refused
    assert (await connect(RIGHT))["message"] == "rate_limited"  # type: ignore[index]
    connector = aiohttp.TCPConnector(local_addr=(attacker, 0))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.get(
            f"{server.url}/api/jobs", headers={"Authorization": f"Bearer {RIGHT}"}
        ) as reply,
    ):
        assert reply.status == 429, await reply.text()
        assert (await reply.json())["error"]["code"] == "rate_limited"
    # Control: the right token from another address connects; from the attacker's, a connect
    # without a token is refused for what it is (no token), not for the guesses.
    assert await connect(RIGHT, "127.0.0.1") is True
    no_token = await socketio_connect(server.url, {}, transport, attacker)
    assert no_token == {"message": "unauthorized"}
