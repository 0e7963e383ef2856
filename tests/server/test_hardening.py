"""Faults found in review, each pinned by a test: bad numbers, owners, lost replies, leftovers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from tidings import (
    Conflict,
    InvalidRequest,
    JobCancelled,
    JobTerminal,
    ProgressEmitter,
    Settings,
    constants,
)
from tidings.errors import StoreUnavailable
from tidings.messages import MessageWriter
from tidings.models import ProgressRequest
from tidings.service import JobService
from tidings.store import MemoryStore, RedisStore, Update, connect
from tidings.store.base import Applied

from tests.support import Watcher, eventually, http_json, running_app

API_KEY = "hardening-key"


@pytest.fixture
async def node(store_url: str | None) -> AsyncIterator[tuple[str, web.Application]]:
    settings = Settings(redis_url=store_url, api_key=API_KEY, coalesce_window=0)
    async with running_app(settings) as running:
        yield running


@pytest.mark.parametrize(
    "body",
    [
        '{"step": "s", "extra": {"x": NaN}}',
        '{"step": "s", "extra": {"x": [Infinity]}}',
        '{"step": "complete", "status": "done", "result": {"rows": -Infinity}}',
    ],
)
async def test_nan_and_infinity_are_refused_over_http(
    node: tuple[str, web.Application], body: str
) -> None:
    import aiohttp

    url, app = node
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{url}/api/jobs/n1/progress",
            data=body,
            headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
        ) as response,
    ):
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "invalid_request"
    assert (await ProgressEmitter.for_app(app).service.read("n1")).job is None


async def test_nan_from_a_python_worker_is_refused(node: tuple[str, web.Application]) -> None:
    emitter = ProgressEmitter.for_app(node[1])
    with pytest.raises(InvalidRequest, match="finite"):
        await emitter.send_progress("n2", "s", extra={"x": float("nan")})
    with pytest.raises(InvalidRequest, match="finite"):
        await emitter.complete("n3", result={"x": float("inf")})


async def test_an_update_cannot_hand_a_job_to_another_owner(
    node: tuple[str, web.Application],
) -> None:
    url, app = node
    emitter = ProgressEmitter.for_app(app)
    await emitter.send_progress("owned", "extracting", 10, owner="mallory")
    with pytest.raises(Conflict, match="belongs to another owner"):
        await emitter.send_progress(
            "owned", "extracting", 20, owner="alice", extra={"filename": "alice-salaries.csv"}
        )
    status, answer = await http_json(
        "POST", f"{url}/api/jobs/owned/progress", {"step": "extracting", "owner": "alice"}, API_KEY
    )
    assert (status, answer["error"]["code"]) == (409, "conflict")
    assert await emitter.send_progress("owned", "extracting", 30, owner="mallory") is not None
    job = await emitter.service.snapshot("owned")
    assert (job["owner"], job["extra"], job["progress"]) == ("mallory", {}, 30)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"step": "s", "status": "processing", "error": {"message": "x"}}, "error goes with"),
        ({"step": "s", "result": {"rows": 1}}, "result goes with status done"),
    ],
)
async def test_error_and_result_go_only_with_their_status(
    node: tuple[str, web.Application], body: dict[str, object], expected: str
) -> None:
    url, _ = node
    status, answer = await http_json("POST", f"{url}/api/jobs/st/progress", body, API_KEY)
    assert status == 400 and expected in answer["error"]["message"]


async def test_a_cancelled_ending_always_carries_an_error(
    node: tuple[str, web.Application],
) -> None:
    url, _ = node
    status, answer = await http_json(
        "POST", f"{url}/api/jobs/c1/progress", {"step": "s", "status": "cancelled"}, API_KEY
    )
    assert status == 202 and answer["event"]["error"] == {
        "code": "cancelled",
        "message": "Cancelled.",
    }


async def test_tokens_go_in_a_query_only_for_the_streams(redis_url: str) -> None:
    secret = "query-token-secret-0123456789-0123456789"
    async with running_app(Settings(secret=secret, redis_url=redis_url)) as (url, app):
        from tidings.web.keys import AUTHORITY

        await ProgressEmitter.for_app(app).send_progress("q1", "extracting", owner="alice")
        token = app[AUTHORITY].mint("alice", ttl=60)
        status, _ = await http_json("GET", f"{url}/api/jobs/q1?token={token}")
        assert status == 401  # a query token is not read here: no token was given
        import aiohttp

        async with aiohttp.ClientSession() as session:
            for scheme in ("Bearer", "bearer", "BEARER"):
                async with session.get(
                    f"{url}/api/jobs/q1", headers={"Authorization": f"{scheme} {token}"}
                ) as reply:
                    assert reply.status == 200


async def test_a_job_made_afresh_after_its_hash_was_evicted_keeps_nothing_old(
    redis_url: str,
) -> None:
    store = RedisStore(connect(redis_url))
    service = JobService(store, None, MessageWriter())
    emitter = ProgressEmitter(service, coalesce_window=0)
    for progress in range(1, 6):
        await emitter.send_progress(
            "evicted", f"step_{progress}", progress, extra={f"k{progress}": progress}
        )
    old = await service.snapshot("evicted")
    client = aioredis.Redis.from_url(redis_url)
    await client.delete(constants.job_key("evicted"))  # as an eviction policy might
    await client.aclose()
    event = await emitter.send_progress("evicted", "again", 1, extra={"fresh": True})
    assert event is not None and event["seq"] == 1 and event["epoch"] != old["epoch"]
    job = await service.snapshot("evicted")
    assert (job["extra"], [s["step"] for s in job["steps"]]) == ({"fresh": True}, ["again"])
    catchup = await service.read("evicted", job["epoch"], 0)
    assert [(e["epoch"], e["seq"]) for e in catchup.events] == [(job["epoch"], 1)]
    assert not (await service.read("evicted", old["epoch"], 2)).recovered
    await store.aclose()


class _LosesFirstReply(RedisStore):
    """The Redis store whose first merge runs (the script stores and publishes the event) and
    whose reply is then lost, as when the connection drops on the way back."""

    lost = False

    async def apply(self, update: Update, **kwargs: Any) -> Applied | None:
        applied = await super().apply(update, **kwargs)
        if not self.lost:
            self.lost = True
            raise StoreUnavailable("the reply was lost")
        return applied


@pytest.mark.parametrize("ending", [False, True], ids=["update", "ending"])
async def test_a_stored_update_whose_reply_was_lost_is_delivered_once_and_returned(
    redis_url: str, ending: bool
) -> None:
    """The emitter's retry finds its update stored: it returns the update's event (not None,
    and not JobTerminal for its own ending), which the script delivered once, not again."""
    async with running_app(Settings(redis_url=redis_url, coalesce_window=0)) as (url, _):
        store = _LosesFirstReply(connect(redis_url))
        service = JobService(store, None, MessageWriter())
        emitter = ProgressEmitter(service, coalesce_window=0)
        watcher = await Watcher(url).connect()
        await watcher.subscribe("lossy")
        if ending:
            first = await emitter.complete("lossy")
        else:
            first = await emitter.send_progress("lossy", "extracting", 10)
            await emitter.send_progress("lossy", "storing", 20)
        assert store.lost
        assert first is not None and first["seq"] == 1
        expected = [1] if ending else [1, 2]
        await eventually(lambda: watcher.seqs("lossy") == expected, what="the stored events")
        if not ending:  # one channel, in order: a second delivery of 1 would precede 2
            assert [event["seq"] for event in watcher.received] == [1, 2]
        await watcher.close()

        # Control arm: the same lost reply, retried by hand without the emitter's rule.
        store.lost = False
        request = (
            ProgressRequest(step="complete", status="done")
            if ending
            else ProgressRequest(step="extracting", progress=10)
        )
        with pytest.raises(StoreUnavailable):
            await service.report("bare", request)
        if ending:
            with pytest.raises(JobTerminal):
                await service.report("bare", request)
        else:
            assert await service.report("bare", request) is None
        await store.aclose()


async def test_a_store_that_does_not_publish_needs_a_publisher() -> None:
    service = JobService(MemoryStore(), None, MessageWriter())
    with pytest.raises(TypeError, match="give JobService a publisher"):
        await service.report("unheard", ProgressRequest(step="extracting"))


async def test_the_emitter_forgets_a_job_once_it_ended(node: tuple[str, web.Application]) -> None:
    emitter = ProgressEmitter.for_app(node[1])
    await emitter.send_progress("gone", "extracting", 10)
    await emitter.service.cancel("gone")
    with pytest.raises(JobCancelled):
        await emitter.send_progress("gone", "storing", 20)
    assert "gone" not in emitter._turns
    assert emitter._coalescer.release("gone") is None


async def test_an_owners_job_list_in_redis_is_bounded(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(constants, "MAX_LISTED_JOBS", 3)
    store = RedisStore(connect(redis_url))
    for index in range(6):
        await store.apply(
            Update(f"many-{index}", step="s", message="m", owner="busy"),
            epoch="e",
            now_iso="2026-01-01T00:00:00.000Z",
            now_ms=index,
        )
    assert [job["job_id"] for job in await store.list_jobs("busy")] == [
        "many-5",
        "many-4",
        "many-3",
    ]
    client = aioredis.Redis.from_url(redis_url)
    assert await client.zcard(constants.user_jobs_key("busy")) == 3
    await client.aclose()
    await store.aclose()


# --- issue 14: no single request may freeze, flood or bloat a node ---------------------------

SECRET = "hardening-secret-0123456789-0123456789"
BOUNDARY = "hardening-boundary"


@pytest.fixture
async def secured(redis_url: str) -> AsyncIterator[tuple[str, web.Application]]:
    settings = Settings(secret=SECRET, api_key=API_KEY, redis_url=redis_url, coalesce_window=0)
    async with running_app(settings) as running:
        yield running


def _token(**claims: object) -> str:
    import jwt

    return jwt.encode({"sub": "alice", "exp": 4_000_000_000, **claims}, SECRET, "HS256")


@pytest.mark.parametrize(
    ("claims", "accepted"),
    [
        ({}, True),  # control arm: the same token with a numeric exp
        ({"exp": "4000000000"}, False),
        ({"exp": True}, False),
        ({"iat": "0"}, False),
        ({"sub": 7}, False),
        ({"jobs": "job-a"}, False),
        ({"scope": "admin"}, False),
    ],
)
async def test_token_claims_are_validated_strictly(
    secured: tuple[str, web.Application], claims: dict[str, object], accepted: bool
) -> None:
    url, _ = secured
    status, body = await http_json("GET", f"{url}/api/jobs", token=_token(**claims))
    assert status == (200 if accepted else 401), body


async def test_a_job_token_creates_nothing(secured: tuple[str, web.Application]) -> None:
    url, _ = secured
    status, made = await http_json("POST", f"{url}/api/jobs", {}, _token())
    assert status == 201, made  # control arm: a user token creates, and gets a job token
    job_token = made["token"]
    status, body = await http_json("POST", f"{url}/api/jobs", {}, job_token)
    assert (status, body["error"]["code"]) == (403, "forbidden")
    status, body = await _post_multipart(
        url, _part('name="files"; filename="a.csv"', b"a,b\n1,2\n"), token=job_token
    )
    assert (status, body["error"]["code"]) == (403, "forbidden")


@pytest.mark.parametrize("job_id", [".", ".."])
async def test_dot_ids_are_refused_on_every_path(
    node: tuple[str, web.Application], job_id: str
) -> None:
    url, app = node
    status, body = await http_json("POST", f"{url}/api/jobs", {"job_id": job_id}, API_KEY)
    assert (status, body["error"]["code"]) == (400, "invalid_request")
    with pytest.raises(InvalidRequest):
        await ProgressEmitter.for_app(app).send_progress(job_id, "s", 1)
    watcher = await Watcher(url).connect()
    try:
        ack = await watcher.call("subscribe", {"job_id": job_id})
        assert ack["error"]["code"] == "invalid_request"
    finally:
        await watcher.close()
    status, _ = await http_json("POST", f"{url}/api/jobs", {"job_id": "..."}, API_KEY)
    assert status == 201  # control arm: three dots are a name, not a path step


async def test_wrong_api_keys_are_throttled_per_address(redis_url: str) -> None:
    settings = Settings(api_key=API_KEY, redis_url=redis_url, auth_failure_burst=5)
    async with running_app(settings) as (url, _):
        statuses = [
            (await http_json("POST", f"{url}/api/jobs/t1/progress", {"step": "s"}, "wrong"))[0]
            for _ in range(8)
        ]
        assert statuses == [401] * 5 + [429] * 3
        import aiohttp

        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{url}/api/jobs/t1/progress",
                json={"step": "s"},
                headers={"Authorization": f"Bearer {API_KEY}"},
            ) as reply,
        ):
            # Even the right key waits: otherwise 429 or not would tell a right guess.
            assert reply.status == 429 and int(reply.headers["Retry-After"]) >= 1
            assert (await reply.json())["error"]["code"] == "rate_limited"
        # Control arm: a request without credentials is not refused.
        assert (await http_json("GET", f"{url}/healthz"))[0] == 200


def _part(disposition: str, data: bytes, headers: str = "") -> bytes:
    return (
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; {disposition}\r\n{headers}\r\n"
    ).encode() + data


async def _post_multipart(url: str, *parts: bytes, token: str | None = None) -> tuple[int, Any]:
    import aiohttp

    body = b"\r\n".join(parts) + f"\r\n--{BOUNDARY}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/api/upload", data=body, headers=headers) as reply,
    ):
        assert reply.content_type == "application/json"
        return reply.status, await reply.json()


@pytest.mark.parametrize(
    "part",
    [
        _part('name="files"; filename="a\x00b.csv"', b"a,b\n"),
        _part('name="files"; filename="a.csv"', b"a,b\n", f"X-Long: {'a' * 20_000}\r\n"),
        _part('name="files"; filename="a.csv"', b"a,b\n", "no colon in this header\r\n"),
    ],
)
async def test_malformed_multipart_parts_are_json_400s(
    node: tuple[str, web.Application], part: bytes
) -> None:
    url, _ = node
    status, body = await _post_multipart(url, part)
    assert (status, body["error"]["code"]) == (400, "invalid_request"), body
    # Control arm: the same part, well formed, is taken.
    status, body = await _post_multipart(url, _part('name="files"; filename="a.csv"', b"a,b\n"))
    assert status == 202, body


async def test_a_body_aiohttp_cannot_decode_is_a_json_400(
    node: tuple[str, web.Application],
) -> None:
    import aiohttp

    url, _ = node
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{url}/api/jobs",
            data=b"not gzip",
            headers={"Content-Encoding": "gzip", "Authorization": f"Bearer {API_KEY}"},
        ) as reply,
    ):
        assert reply.status == 400
        assert (await reply.json())["error"]["code"] == "invalid_request"
