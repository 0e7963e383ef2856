"""No existence oracle: someone else's job and a job that does not exist are refused alike, by
the same path (one owner lookup), on both stores, over HTTP and Socket.IO."""

from __future__ import annotations

import statistics
import time
from typing import Any

import aiohttp
import pytest
import redis
from tidings import ProgressEmitter, Settings
from tidings.web.keys import AUTHORITY

from tests.support import Watcher, running_app

SECRET = "s" * 32


def command_counts(url: str) -> dict[str, int]:
    with redis.Redis.from_url(url) as client:
        stats = client.info("commandstats")
    return {name: int(value["calls"]) for name, value in stats.items()}


@pytest.mark.parametrize("store_url", ["memory", "redis"], indirect=True)
async def test_someone_elses_job_and_a_missing_one_look_and_cost_the_same(
    store_url: str | None,
) -> None:
    settings = Settings(secret=SECRET, redis_url=store_url)
    async with running_app(settings) as (url, app), aiohttp.ClientSession() as http:
        emitter = ProgressEmitter.for_app(app)
        await emitter.send_progress("alices-job", "parsing", 10, owner="alice")
        await emitter.aclose()
        bob = {"Authorization": f"Bearer {app[AUTHORITY].mint('bob')}"}

        async def ask(job_id: str) -> tuple[int, Any, float]:
            started = time.perf_counter()
            async with http.get(f"{url}/api/jobs/{job_id}", headers=bob) as response:
                body = await response.json()
            return response.status, body, time.perf_counter() - started

        def redis_commands() -> dict[str, int]:
            return command_counts(store_url) if store_url else {}

        outcomes: dict[str, list[tuple[int, Any, float]]] = {}
        commands: dict[str, dict[str, int]] = {}
        for job_id in ("alices-job", "nobodys-job"):
            before = redis_commands()
            outcomes[job_id] = [await ask(job_id) for _ in range(50)]
            after = redis_commands()
            commands[job_id] = {
                name: calls - before.get(name, 0)
                for name, calls in after.items()
                if calls != before.get(name, 0) and name != "cmdstat_info"
            }
        # The control: a job Bob may see is read in full, which the comparison would notice.
        mine = {"Authorization": f"Bearer {app[AUTHORITY].mint('alice')}"}
        before = redis_commands()
        async with http.get(f"{url}/api/jobs/alices-job", headers=mine) as response:
            assert response.status == 200
        allowed = {
            name for name, calls in redis_commands().items() if calls != before.get(name, 0)
        } - {"cmdstat_info"}

    (status_a, body_a, _), (status_b, body_b, _) = (
        outcomes["alices-job"][0],
        outcomes["nobodys-job"][0],
    )
    assert status_a == status_b == 404
    assert body_a["error"]["code"] == body_b["error"]["code"] == "not_found"
    assert body_a["error"]["message"].replace("alices-job", "X") == body_b["error"][
        "message"
    ].replace("nobodys-job", "X")
    if store_url:
        assert commands["alices-job"] == commands["nobodys-job"] == {"cmdstat_hmget": 50}
        assert allowed - {"cmdstat_hmget"}, "the control: a permitted read issues other commands"
    medians = {
        job_id: statistics.median(seconds for _, _, seconds in runs) * 1e6
        for job_id, runs in outcomes.items()
    }
    print(f"median µs, {'redis' if store_url else 'memory'}: {medians}")


async def test_the_socket_refuses_both_alike(redis_url: str) -> None:
    settings = Settings(secret=SECRET, redis_url=redis_url)
    async with running_app(settings) as (url, app):
        emitter = ProgressEmitter.for_app(app)
        await emitter.send_progress("alices-job", "parsing", 10, owner="alice")
        await emitter.aclose()
        watcher = await Watcher(url, {"token": app[AUTHORITY].mint("bob")}).connect()
        try:
            answers = [
                await watcher.call("subscribe", {"job_id": job_id})
                for job_id in ("alices-job", "nobodys-job")
            ]
        finally:
            await watcher.close()
    assert answers[0] == answers[1]
    assert answers[0]["ok"] is False and answers[0]["error"]["code"] == "forbidden"
