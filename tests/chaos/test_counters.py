"""Every kind of refused input is a counter on ``/metrics``: each provoked here, then read.

One node (open mode, its API key set, 2 wrong credentials per address, a 0.2 s parsing budget):
garbage on a websocket, a binary packet, connects with a token refused ``unauthorized`` and then
``rate_limited``, wrong API keys answered 429, and a file that overruns its parsing budget. Each
step asserts the counters it moved, and that the others stayed where they were, so a counter
that counted the wrong thing (or nothing) fails here.
"""

from __future__ import annotations

from collections.abc import Iterator

import aiohttp
import pytest

from tests.chaos.support import RawWebSocket, node, slow_csv, socketio_connect
from tests.ingest.support import finished, upload
from tests.server.test_metrics import scrape, value
from tests.support import ServerProcess

ATTACKER = "127.0.0.8"
COUNTERS = (
    ("tidings_malformed_packets_total", {}),
    ("tidings_binary_packets_refused_total", {}),
    ("tidings_connections_refused_total", {}),
    ("tidings_connects_refused_total", {"reason": "unauthorized"}),
    ("tidings_connects_refused_total", {"reason": "rate_limited"}),
    ("tidings_auth_throttled_total", {"transport": "socketio"}),
    ("tidings_auth_throttled_total", {"transport": "http"}),
    ("tidings_socket_events_rate_limited_total", {"event": "subscribe"}),
    ("tidings_parse_pool_restarts_total", {}),
    ("tidings_parse_overruns_total", {}),
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {
        "TIDINGS_AUTH_FAILURE_BURST": "2",
        "TIDINGS_AUTH_FAILURE_RATE": "0.01",
        "TIDINGS_PIPELINE_TIMEOUT": "0.2",
        "TIDINGS_PIPELINE_PROCESSES": "1",
    }
    with node(tmp_path_factory.mktemp("counters"), **env) as running:
        yield running


async def _counters(url: str) -> list[float]:
    samples = await scrape(url)
    return [value(samples, name, **labels) for name, labels in COUNTERS]


async def _moved(url: str, before: list[float]) -> dict[str, float]:
    """The counters that moved since ``before``, by name and label value, and by how much."""
    after = await _counters(url)
    return {
        name + "".join(f"{{{label}}}" for label in labels.values()): now - then
        for (name, labels), then, now in zip(COUNTERS, before, after, strict=True)
        if now != then
    }


async def test_each_refusal_is_counted_on_metrics(server: ServerProcess) -> None:
    url = server.url

    before = await _counters(url)
    garbage = await RawWebSocket.open(url)
    await garbage.frames(10, until=lambda p: p.startswith(b"0{"))
    for _ in range(5):
        await garbage.send("42[")
    assert await garbage.closed_by_server(5)
    await garbage.close()
    assert await _moved(url, before) == {
        "tidings_malformed_packets_total": 5,
        "tidings_connections_refused_total": 1,
    }

    before = await _counters(url)
    binary = await RawWebSocket.open(url)
    await binary.frames(10, until=lambda p: p.startswith(b"0{"))
    await binary.send('451-["subscribe",{"_placeholder":true,"num":0}]')
    assert await binary.closed_by_server(5)
    await binary.close()
    assert await _moved(url, before) == {
        "tidings_malformed_packets_total": 1,
        "tidings_binary_packets_refused_total": 1,
        "tidings_connections_refused_total": 1,
    }

    before = await _counters(url)
    guess = {"token": "anything", "user_id": "not a user id"}  # open mode: a bad user_id
    for expected in ("unauthorized", "unauthorized", "rate_limited"):
        refused = await socketio_connect(url, guess, "websocket", ATTACKER)
        assert refused["message"] == expected, refused
    assert await _moved(url, before) == {
        "tidings_connects_refused_total{unauthorized}": 2,
        "tidings_connects_refused_total{rate_limited}": 1,
        "tidings_auth_throttled_total{socketio}": 1,
    }

    before = await _counters(url)
    connector = aiohttp.TCPConnector(local_addr=(ATTACKER, 0))
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        session.post(
            f"{url}/api/jobs/j/progress", json={"step": "s"}, headers={"Authorization": "Bearer x"}
        ) as reply,
    ):
        assert reply.status == 429  # the same address's bucket, emptied by the connects
    assert await _moved(url, before) == {"tidings_auth_throttled_total{http}": 1}

    before = await _counters(url)
    status, body = await upload(url, [("slow.csv", slow_csv())])
    assert status == 202, body
    job = await finished(url, body["jobs"][0]["job_id"])
    assert job["status"] == "error", job
    assert await _moved(url, before) == {
        "tidings_parse_pool_restarts_total": 1,
        "tidings_parse_overruns_total": 1,
    }
