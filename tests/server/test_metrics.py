"""``GET /metrics``: Prometheus text, one registry per app, each metric counting what it says."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import prometheus_client
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from tidings import ProgressEmitter, Settings
from tidings.web.keys import SERVICE

from tests.support import Watcher, free_port, running_app

Node = tuple[str, web.Application]


@pytest.fixture(params=["memory", "redis"])
async def node(request: pytest.FixtureRequest) -> AsyncIterator[Node]:
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    async with running_app(Settings(redis_url=redis_url, coalesce_window=0)) as running:
        yield running


async def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics`` by name and labels."""
    async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def get(url: str, method: str = "GET") -> int:
    async with aiohttp.ClientSession() as session, session.request(method, url) as response:
        await response.read()
        return response.status


async def test_events_published_and_apply_latency(node: Node) -> None:
    url, app = node
    emitter = ProgressEmitter.for_app(app)
    before = await scrape(url)
    assert value(before, "tidings_events_published_total", event="job_update") == 0
    await emitter.send_progress("m-1", "extracting", 10)
    await emitter.send_progress("m-1", "extracting", 10)  # no change: applied, not published
    await emitter.send_progress("m-1", "storing", 50)
    await emitter.complete("m-1")
    await emitter.send_progress("m-2", "extracting", 10)
    await emitter.fail("m-2", "Row 12 has 3 columns, expected 5")
    after = await scrape(url)
    assert value(after, "tidings_events_published_total", event="job_update") == 3
    assert value(after, "tidings_events_published_total", event="job_complete") == 1
    assert value(after, "tidings_events_published_total", event="job_error") == 1
    assert value(after, "tidings_update_apply_seconds_count") == 6
    assert value(after, "tidings_update_apply_seconds_bucket", le="+Inf") == 6
    assert value(after, "tidings_update_apply_seconds_sum") > 0


async def test_publish_errors_are_counted_apart() -> None:
    """On the embedded store, where the service publishes; the Redis store publishes in the
    same atomic call that stores, so there a publish cannot fail on its own."""

    class Failing:
        async def emit(self, event: str, data: Any, *, room: list[str], namespace: str) -> None:
            raise ConnectionError("publish lost")

    async with running_app(Settings(coalesce_window=0)) as (url, app):
        app[SERVICE].publisher.publisher = Failing()  # under the counting wrapper
        await ProgressEmitter.for_app(app).send_progress("lost", "extracting", 10)
        samples = await scrape(url)
    assert value(samples, "tidings_publish_errors_total", event="job_update") == 1
    assert value(samples, "tidings_events_published_total", event="job_update") == 0


async def test_socket_events_refused_rate_limited_are_counted_by_event() -> None:
    """A burst of 3 that does not refill within the test: the first 3 events pass and move
    nothing (the control arm), each one past them is refused and counted under its name."""
    limited = "tidings_socket_events_rate_limited_total"
    async with running_app(Settings(socket_rate=0.001, socket_burst=3)) as (url, _):
        noisy = await Watcher(url).connect()
        calm = await Watcher(url).connect()
        for _ in range(3):
            assert (await noisy.call("list_jobs", {}))["ok"] is True
        samples = await scrape(url)
        assert [value(samples, limited, event=event) for event in ("list_jobs", "cancel")] == [0, 0]
        acks = [await noisy.call("list_jobs", {}) for _ in range(4)]
        acks.append(await noisy.call("cancel", {"job_id": "j"}))
        assert [ack["error"]["code"] for ack in acks] == ["rate_limited"] * 5
        assert (await calm.call("list_jobs", {}))["ok"] is True  # its own bucket: not counted
        samples = await scrape(url)
        await noisy.close()
        await calm.close()
    assert value(samples, limited, event="list_jobs") == 4
    assert value(samples, limited, event="cancel") == 1
    assert value(samples, limited, event="subscribe") == 0
    assert ("tidings_socket_events_rate_limited_total", (("event", "unsubscribe"),)) in samples


async def test_http_requests_by_route_and_status(node: Node) -> None:
    url, app = node
    await ProgressEmitter.for_app(app).send_progress("seen", "extracting", 10)
    assert await get(f"{url}/api/jobs/seen") == 200
    assert await get(f"{url}/api/jobs/missing") == 404
    assert await get(f"{url}/api/jobs/missing") == 404
    assert await get(f"{url}/api/jobs/bad%20id") == 400
    assert await get(f"{url}/no/such/path") == 404
    assert await get(f"{url}/api/jobs", "DELETE") == 405
    assert await get(f"{url}/api/jobs", "PROPFIND") == 405  # an unlisted method mints no label
    samples = await scrape(url)
    counted = {
        labels: count
        for (name, labels), count in samples.items()
        if name == "tidings_http_requests_total"
    }
    route = ("route", "/api/jobs/{job_id}")
    assert counted[(("method", "GET"), route, ("status", "200"))] == 1
    assert counted[(("method", "GET"), route, ("status", "404"))] == 2
    assert counted[(("method", "GET"), route, ("status", "400"))] == 1
    assert counted[(("method", "GET"), ("route", "unmatched"), ("status", "404"))] == 1
    assert counted[(("method", "DELETE"), ("route", "unmatched"), ("status", "405"))] == 1
    assert counted[(("method", "other"), ("route", "unmatched"), ("status", "405"))] == 1
    assert not any("missing" in dict(labels)["route"] for labels in counted)  # no raw paths


async def test_sockets_subscriptions_and_streams_are_read_live(node: Node) -> None:
    url, app = node
    await ProgressEmitter.for_app(app).send_progress("live", "extracting", 10, owner="u1")
    idle = await scrape(url)
    assert value(idle, "tidings_connected_sockets") == 0
    assert value(idle, "tidings_subscriptions") == 0
    assert value(idle, "tidings_sse_streams", kind="job") == 0

    watcher = await Watcher(url, {"user_id": "u1"}).connect()
    await watcher.subscribe("live")
    await watcher.subscribe("later")
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url}/api/jobs/live/stream") as job_stream,
        session.get(f"{url}/api/stream?user_id=u1") as user_stream,
    ):
        assert (job_stream.status, user_stream.status) == (200, 200)
        busy = await scrape(url)
        assert value(busy, "tidings_connected_sockets") == 1
        assert value(busy, "tidings_subscriptions") == 2
        assert value(busy, "tidings_sse_streams", kind="job") == 1
        assert value(busy, "tidings_sse_streams", kind="user") == 1
    await watcher.close()

    async def drained() -> bool:
        samples = await scrape(url)
        return (
            value(samples, "tidings_connected_sockets") == 0
            and value(samples, "tidings_subscriptions") == 0
            and value(samples, "tidings_sse_streams", kind="job") == 0
            and value(samples, "tidings_sse_streams", kind="user") == 0
        )

    for _ in range(200):  # a bound on waiting (10 s), not a timing assertion
        if await drained():
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the gauges did not come back to zero")


async def test_store_errors_are_counted_by_operation() -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    async with running_app(Settings(redis_url=dead)) as (url, _):
        assert await get(f"{url}/readyz") == 503
        assert await get(f"{url}/api/jobs/j") == 503
        samples = await scrape(url)
        assert value(samples, "tidings_store_errors_total", operation="ping") == 1
        assert value(samples, "tidings_store_errors_total", operation="read") == 1
        assert (
            value(
                samples, "tidings_http_requests_total", method="GET", route="/readyz", status="503"
            )
            == 1
        )


async def test_each_app_has_its_own_registry() -> None:
    async with (
        running_app(Settings()) as (first_url, first),
        running_app(Settings()) as (second_url, _),
    ):
        await ProgressEmitter.for_app(first).send_progress("only-here", "extracting", 1)
        first_samples = await scrape(first_url)
        second_samples = await scrape(second_url)
        assert value(first_samples, "tidings_events_published_total", event="job_update") == 1
        assert value(second_samples, "tidings_events_published_total", event="job_update") == 0
    global_registry = prometheus_client.REGISTRY
    assert (
        global_registry.get_sample_value("tidings_events_published_total", {"event": "job_update"})
        is None
    )
