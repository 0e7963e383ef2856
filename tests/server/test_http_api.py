"""The HTTP API of PROTOCOL.md over real sockets: every route, its answers and its error codes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from tidings import ProgressEmitter, Settings
from tidings.web.keys import AUTHORITY

from tests.support import free_port, running_app

SECRET = "http-test-secret-0123456789abcdefghij"
API_KEY = "worker-key"
Node = tuple[str, web.Application]


def settings(**overrides: Any) -> Settings:
    """A node's settings; every update is its own event (no coalescing), as the tests count."""
    return Settings(coalesce_window=0, **overrides)


async def call(
    method: str,
    url: str,
    body: Any = None,
    *,
    raw: bytes | str | None = None,
    token: str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, dict[str, str]]:
    """One request: the status, the JSON answer (None when there is none) and the headers."""
    headers = dict(headers or {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, url, json=body if raw is None else None, data=raw, headers=headers
        ) as response,
    ):
        text = await response.text()
        answer = await response.json(content_type=None) if text else None
        return response.status, answer, dict(response.headers)


def error_of(answer: Any) -> str:
    """The code of a well-formed error body; anything else fails the test."""
    assert isinstance(answer, dict) and set(answer) == {"error"}, answer
    error = answer["error"]
    assert set(error) == {"code", "message"}, error
    assert isinstance(error["message"], str) and error["message"]
    assert "Traceback" not in error["message"]
    return str(error["code"])


@pytest.fixture
async def node(store_url: str | None) -> AsyncIterator[Node]:
    async with running_app(settings(redis_url=store_url)) as running:
        yield running


@pytest.fixture
async def secure(store_url: str | None) -> AsyncIterator[Node]:
    config = settings(redis_url=store_url, secret=SECRET, api_key=API_KEY)
    async with running_app(config) as running:
        yield running


async def test_every_route_answers_as_the_protocol_says(node: Node) -> None:
    url, _ = node
    status, answer, _ = await call(
        "POST", f"{url}/api/jobs", {"job_id": "j-1", "owner": "u1", "filename": "a.csv"}
    )
    assert status == 201 and set(answer) == {"job"}  # no token on an open server
    job = answer["job"]
    assert (job["job_id"], job["owner"], job["status"], job["seq"]) == ("j-1", "u1", "queued", 1)
    assert job["extra"] == {"filename": "a.csv"}

    status, answer, _ = await call("POST", f"{url}/api/jobs", {})
    assert status == 201 and answer["job"]["job_id"].startswith("job-")

    status, answer, _ = await call("GET", f"{url}/api/jobs?user_id=u1")
    assert status == 200 and [j["job_id"] for j in answer["jobs"]] == ["j-1"]
    status, answer, _ = await call("GET", f"{url}/api/jobs")
    assert (status, answer) == (200, {"jobs": []})  # nobody named: nobody's jobs

    progress = {"step": "duplicate_check", "progress": 15, "context": {"filename": "a.csv"}}
    status, answer, _ = await call("POST", f"{url}/api/jobs/j-1/progress", progress)
    assert status == 202
    event = answer["event"]
    assert (event["seq"], event["status"], event["progress"]) == (2, "processing", 15)
    assert event["message"] == "Checking if I've seen a.csv before..."
    status, answer, _ = await call("POST", f"{url}/api/jobs/j-1/progress", progress)
    assert (status, answer) == (202, {"event": None})  # nothing changed: no event

    status, answer, _ = await call("GET", f"{url}/api/jobs/j-1")
    assert status == 200 and answer["seq"] == 2 and answer["step"] == "duplicate_check"
    epoch = answer["epoch"]

    status, answer, _ = await call("GET", f"{url}/api/jobs/j-1/events")
    assert (status, answer) == (200, {"events": [], "recovered": False})
    status, answer, _ = await call("GET", f"{url}/api/jobs/j-1/events?epoch={epoch}&since=1")
    assert status == 200 and answer["recovered"] is True
    assert [e["seq"] for e in answer["events"]] == [2]
    status, answer, _ = await call("GET", f"{url}/api/jobs/j-1/events?epoch=other&since=1")
    assert (status, answer) == (200, {"events": [], "recovered": False})

    status, answer, _ = await call("POST", f"{url}/api/jobs/j-1/cancel")
    assert status == 200 and answer["status"] == "cancelled" and answer["cancel_requested"]
    status, again, _ = await call("POST", f"{url}/api/jobs/j-1/cancel")
    assert status == 200 and again["seq"] == answer["seq"]  # cancelling twice changes nothing

    assert (await call("GET", f"{url}/healthz"))[:2] == (200, {"ok": True})
    assert (await call("GET", f"{url}/readyz"))[:2] == (200, {"ok": True})


async def test_recent_jobs_list_every_owners_newest_on_an_open_server(node: Node) -> None:
    url, _ = node
    for job_id, owner in [("mine", "u1"), ("worker-1", None), ("theirs", "u2")]:
        body = {"job_id": job_id} if owner is None else {"job_id": job_id, "owner": owner}
        assert (await call("POST", f"{url}/api/jobs", body))[0] == 201
        await asyncio.sleep(0.002)  # made in one millisecond, jobs would be listed by id
    await call("POST", f"{url}/api/jobs/worker-1/progress", {"step": "extracting", "progress": 40})
    status, answer, _ = await call("GET", f"{url}/api/jobs/recent")
    assert status == 200 and set(answer) == {"jobs"}
    assert [job["job_id"] for job in answer["jobs"]] == ["theirs", "worker-1", "mine"]
    assert answer["jobs"][1]["progress"] == 40  # snapshots, as they are now
    status, answer, _ = await call("GET", f"{url}/api/jobs?user_id=u1")
    assert [job["job_id"] for job in answer["jobs"]] == ["mine"]  # control: a user's list is theirs


async def test_recent_jobs_are_forbidden_with_a_secret(secure: Node) -> None:
    url, app = secure
    worker = {"step": "extracting"}
    reported = await call("POST", f"{url}/api/jobs/worker-1/progress", worker, token=API_KEY)
    assert reported[0] == 202
    user = app[AUTHORITY].mint("u1")
    for token in (None, user, API_KEY):  # no credentials, a user's token, even the API key
        status, answer, _ = await call("GET", f"{url}/api/jobs/recent", token=token)
        assert (status, error_of(answer)) == (403, "forbidden"), token
        assert answer["error"]["message"] == "Recent jobs are listed only on an open server."
    watcher = app[AUTHORITY].mint("u1", jobs=["worker-1"])
    status, answer, _ = await call("GET", f"{url}/api/jobs/worker-1", token=watcher)
    assert status == 200 and answer["job_id"] == "worker-1"  # control: only the listing is refused


DEEP = 100_000  # deeper than any JSON parser recurses
BAD_BODIES = [
    pytest.param("/api/jobs", "{", id="truncated"),
    pytest.param("/api/jobs", b"\xff\xfe{}", id="not-utf8"),
    pytest.param("/api/jobs", "[1, 2]", id="array"),
    pytest.param("/api/jobs", '"a string"', id="string"),
    pytest.param("/api/jobs", '{"job_id": "has space"}', id="job-id-space"),
    pytest.param("/api/jobs", '{"job_id": 7}', id="job-id-number"),
    pytest.param("/api/jobs", '{"job_id": "' + "x" * 129 + '"}', id="job-id-long"),
    pytest.param("/api/jobs", '{"owner": "no spaces allowed"}', id="owner"),
    pytest.param("/api/jobs", '{"unknown": 1}', id="unknown-field"),
    pytest.param("/api/jobs", '{"filename": ""}', id="empty-filename"),
    pytest.param("/api/jobs", '{"extra": {"k": "\\ud800"}}', id="lone-surrogate-extra"),
    pytest.param("/api/jobs", '{"extra": ' + "[" * DEEP + "]" * DEEP + "}", id="deep-extra"),
    pytest.param("/api/jobs/j/progress", "not json", id="not-json"),
    pytest.param("/api/jobs/j/progress", '{"step": "not a step"}', id="step"),
    pytest.param("/api/jobs/j/progress", '{"step": "s", "progress": "50"}', id="progress-text"),
    pytest.param("/api/jobs/j/progress", '{"step": "s", "progress": NaN}', id="progress-nan"),
    pytest.param("/api/jobs/j/progress", '{"step": "s", "progress": 1e999}', id="progress-inf"),
    pytest.param("/api/jobs/j/progress", '{"step": "s", "progress": 101}', id="progress-101"),
    pytest.param("/api/jobs/j/progress", '{"step": "s", "progress": -1}', id="progress-neg"),
    pytest.param("/api/jobs/j/progress", '{"step": "s", "status": "exploded"}', id="status"),
    pytest.param("/api/jobs/j/progress", '{"step": "s", "error": {"message": ""}}', id="error"),
    pytest.param("/api/jobs/j/progress", '{"step": "s", "context": {"k": {"a": 1}}}', id="context"),
    pytest.param("/api/jobs/j/progress", '{"step": "s", "message": "\\ud800"}', id="surrogate-msg"),
    pytest.param(
        "/api/jobs/j/progress", '{"step": "s", "result": "\\udfff"}', id="surrogate-result"
    ),
    pytest.param(
        "/api/jobs/j/progress",
        '{"step": "s", "result": ' + "[" * 5000 + "]" * 5000 + "}",
        id="deep",
    ),
]


@pytest.mark.parametrize(("path", "raw"), BAD_BODIES)
async def test_bad_bodies_are_invalid_requests(node: Node, path: str, raw: bytes | str) -> None:
    url, _ = node
    status, answer, _ = await call("POST", url + path, raw=raw)
    assert (status, error_of(answer)) == (400, "invalid_request")
    # Nothing was written.
    assert (await call("GET", f"{url}/api/jobs/j"))[0] == 404


BAD_PATHS = [
    ("GET", "/api/jobs/has%20space"),
    ("GET", "/api/jobs/" + "x" * 129),
    ("GET", "/api/jobs/..%2Fetc%2Fpasswd"),
    ("GET", "/api/jobs/%00/events"),
    ("POST", "/api/jobs/a%2Fb/progress"),
    ("POST", "/api/jobs/%F0%9F%98%80/cancel"),
    ("GET", "/api/jobs/ok/events?epoch=e"),  # epoch and since go together
    ("GET", "/api/jobs/ok/events?since=3"),
    ("GET", "/api/jobs/ok/events?epoch=e&since=-1"),
    ("GET", "/api/jobs/ok/events?epoch=e&since=three"),
    ("GET", "/api/jobs/ok/events?epoch=e&since=%C2%B2"),  # a digit to isdigit(), not to int()
    ("GET", "/api/jobs/ok/events?epoch=e&since=" + "9" * 30),
    ("GET", "/api/jobs/ok/events?epoch=e&since=" + "9" * 5000),
    ("GET", "/api/jobs/ok/events?epoch=bad%20epoch&since=1"),
]


@pytest.mark.parametrize(("method", "path"), BAD_PATHS)
async def test_bad_ids_and_queries_are_invalid_requests(node: Node, method: str, path: str) -> None:
    url, app = node
    await ProgressEmitter.for_app(app).send_progress("ok", "extracting", 1)
    status, answer, _ = await call(method, url + path)
    assert (status, error_of(answer)) == (400, "invalid_request")


async def test_secret_mode_needs_a_valid_token_on_every_read(secure: Node) -> None:
    url, app = secure
    await ProgressEmitter.for_app(app).send_progress("held", "extracting", 1, owner="u1")
    reads = [
        ("GET", "/api/jobs"),
        ("GET", "/api/jobs/held"),
        ("GET", "/api/jobs/held/events"),
        ("POST", "/api/jobs/held/cancel"),
        ("POST", "/api/jobs"),
    ]
    expired = app[AUTHORITY].mint("u1", ttl=-10)
    forged = jwt.encode({"sub": "u1", "exp": int(time.time()) + 60}, "another-secret-" * 3)
    for token in (None, "", "not-a-jwt", expired, forged):
        for method, path in reads:
            status, answer, _ = await call(method, url + path, token=token)
            assert (status, error_of(answer)) == (401, "unauthorized"), (token, path)
    # The control arm: the owner's token is let in everywhere.
    owner = app[AUTHORITY].mint("u1", ttl=60)
    for method, path in reads:
        status, _, _ = await call(method, url + path, {} if method == "POST" else None, token=owner)
        assert status in (200, 201), path


async def test_another_users_job_answers_exactly_like_a_missing_one(secure: Node) -> None:
    url, app = secure
    await ProgressEmitter.for_app(app).send_progress("theirs", "extracting", 1, owner="u2")
    mine = app[AUTHORITY].mint("u1", ttl=60)
    for suffix, method in [("", "GET"), ("/events", "GET"), ("/cancel", "POST")]:
        answers = []
        for job_id in ("theirs", "absent"):
            status, answer, _ = await call(method, f"{url}/api/jobs/{job_id}{suffix}", token=mine)
            answers.append((status, answer["error"]["code"], answer["error"]["message"]))
        assert answers == [
            (404, "not_found", "There is no job theirs."),
            (404, "not_found", "There is no job absent."),
        ]
    # Not cancelled by the attempt; and its owner sees it.
    theirs = app[AUTHORITY].mint("u2", ttl=60)
    status, answer, _ = await call("GET", f"{url}/api/jobs/theirs", token=theirs)
    assert status == 200 and answer["status"] == "processing"
    scoped = app[AUTHORITY].mint("guest", ["theirs"], ttl=60)
    assert (await call("GET", f"{url}/api/jobs/theirs", token=scoped))[0] == 200


async def test_creating_jobs_in_secret_mode(secure: Node) -> None:
    url, app = secure
    user = app[AUTHORITY].mint("u1", ttl=60)
    status, answer, _ = await call("POST", f"{url}/api/jobs", {"filename": "a.csv"}, token=user)
    assert status == 201 and answer["job"]["owner"] == "u1"
    mine, scoped = answer["job"]["job_id"], answer["token"]
    assert (await call("GET", f"{url}/api/jobs/{mine}", token=scoped))[0] == 200
    # The job's token opens that job only: not the owner's list, and it dies with the asker's.
    await ProgressEmitter.for_app(app).send_progress("u1-other", "extracting", owner="u1")
    status, answer, _ = await call("GET", f"{url}/api/jobs", token=scoped)
    assert (status, answer["jobs"]) == (200, [])
    assert (await call("GET", f"{url}/api/jobs/u1-other", token=scoped))[0] == 404
    claims = jwt.decode(scoped, SECRET, algorithms=["HS256"])
    assert claims["exp"] <= jwt.decode(user, SECRET, algorithms=["HS256"])["exp"]
    # A user may not choose the id: it could take over a job a worker is about to report.
    status, answer, _ = await call("POST", f"{url}/api/jobs", {"job_id": "mine"}, token=user)
    assert (status, error_of(answer)) == (403, "forbidden")
    status, answer, _ = await call(
        "POST", f"{url}/api/jobs", {"job_id": "x", "owner": "u2"}, token=user
    )
    assert (status, error_of(answer)) == (403, "forbidden")
    status, answer, _ = await call(
        "POST", f"{url}/api/jobs", {"job_id": "x", "owner": "u2"}, token=API_KEY
    )
    assert status == 201 and answer["job"]["owner"] == "u2"  # the server's key may name anyone


@pytest.mark.parametrize("mode", ["open", "secret"])
async def test_progress_needs_the_api_key_when_one_is_configured(
    store_url: str | None, mode: str
) -> None:
    secret = SECRET if mode == "secret" else None
    config = settings(redis_url=store_url, secret=secret, api_key=API_KEY)
    async with running_app(config) as (url, app):
        target = f"{url}/api/jobs/k/progress"
        body = {"step": "extracting", "progress": 10}
        user_token = app[AUTHORITY].mint("u1", ["k"], ttl=60) if secret else "user-token"
        for token in (None, "wrong-key", user_token):
            status, answer, _ = await call("POST", target, body, token=token)
            assert (status, error_of(answer)) == (401, "unauthorized"), token
        assert (await call("POST", target, body, token=API_KEY))[0] == 202
    async with running_app(settings(redis_url=store_url)) as (url, _):
        # No key and no secret: an open development server takes progress from anyone.
        assert (await call("POST", f"{url}/api/jobs/k/progress", body))[0] == 202


async def test_conflicts_answer_409(node: Node) -> None:
    url, app = node
    emitter = ProgressEmitter.for_app(app)
    await emitter.send_progress("finished", "extracting", 10)
    await emitter.complete("finished")
    status, answer, _ = await call(
        "POST", f"{url}/api/jobs/finished/progress", {"step": "extracting", "progress": 50}
    )
    assert (status, error_of(answer)) == (409, "job_terminal")
    assert "done" in answer["error"]["message"]
    status, answer, _ = await call("POST", f"{url}/api/jobs", {"job_id": "finished"})
    assert (status, error_of(answer)) == (409, "conflict")
    snapshot = (await call("GET", f"{url}/api/jobs/finished"))[1]
    assert (snapshot["status"], snapshot["seq"]) == ("done", 2)  # untouched


async def test_oversized_bodies_answer_413(node: Node) -> None:
    url, _ = node
    huge = '{"step": "s", "extra": {"k": "' + "x" * 300_000 + '"}}'
    status, answer, _ = await call("POST", f"{url}/api/jobs/j/progress", raw=huge)
    assert (status, error_of(answer)) == (413, "too_large")

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit still holds
        yield b'{"step": "s", "extra": {"k": "'
        for _ in range(40):
            yield b"x" * 10_000
        yield b'"}}'

    status, answer, _ = await call("POST", f"{url}/api/jobs", raw=chunks())  # type: ignore[arg-type]
    assert (status, error_of(answer)) == (413, "too_large")

    # Under the body limit but over the 16 KB extra limit.
    big_extra = {"step": "s", "extra": {"k": "x" * 20_000}}
    status, answer, _ = await call("POST", f"{url}/api/jobs/j/progress", big_extra)
    assert (status, error_of(answer)) == (413, "too_large")
    status, answer, _ = await call("POST", f"{url}/api/jobs", {"extra": {"k": "x" * 20_000}})
    assert (status, error_of(answer)) == (413, "too_large")
    # The control arm: a body just under the limits is taken.
    fits = {"step": "s", "extra": {"k": "x" * 16_000}}
    assert (await call("POST", f"{url}/api/jobs/j/progress", fits))[0] == 202


async def test_unknown_routes_and_methods(node: Node) -> None:
    url, _ = node
    status, answer, _ = await call("GET", f"{url}/api/nothing-here")
    assert (status, error_of(answer)) == (404, "not_found")
    status, answer, _ = await call("GET", f"{url}/api/jobs/a/b/c")
    assert (status, error_of(answer)) == (404, "not_found")
    for method, path, allowed in [
        ("DELETE", "/api/jobs", {"GET", "POST"}),
        ("PUT", "/api/jobs/j", {"GET"}),
        ("GET", "/api/jobs/j/progress", {"POST"}),
        ("POST", "/api/jobs/j/events", {"GET"}),
        ("POST", "/healthz", {"GET"}),
    ]:
        status, answer, headers = await call(method, url + path)
        assert (status, error_of(answer)) == (405, "method_not_allowed"), path
        assert allowed <= {m.strip() for m in headers["Allow"].split(",")}, path


async def test_a_store_that_does_not_answer_is_503_everywhere() -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    async with running_app(settings(redis_url=dead)) as (url, _):
        status, answer, _ = await call("GET", f"{url}/readyz")
        assert status == 503 and answer["ok"] is False
        assert answer["error"]["code"] == "unavailable"
        for method, path, body in [
            ("POST", "/api/jobs", {"job_id": "j"}),
            ("GET", "/api/jobs?user_id=u1", None),
            ("GET", "/api/jobs/j", None),
            ("GET", "/api/jobs/j/events", None),
            ("POST", "/api/jobs/j/progress", {"step": "extracting"}),
            ("POST", "/api/jobs/j/cancel", None),
            ("GET", "/api/jobs/j/stream", None),
            ("GET", "/api/stream?user_id=u1", None),
        ]:
            status, answer, _ = await call(method, url + path, body)
            assert (status, error_of(answer)) == (503, "unavailable"), path
        assert (await call("GET", f"{url}/healthz"))[0] == 200  # alive, just not ready
