"""Tokens on every path: nobody sees another user's job, bad tokens are refused, expiry ends."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import jwt
import pytest
import socketio
from aiohttp import web
from tidings import ProgressEmitter, Settings
from tidings.web.keys import AUTHORITY

from tests.support import Watcher, eventually, http_json, running_app

SECRET = "test-secret-please-ignore-0123456789"


@pytest.fixture(params=["memory", "redis"])
async def node(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, web.Application]]:
    redis_url = request.getfixturevalue("redis_url") if request.param == "redis" else None
    settings = Settings(secret=SECRET, api_key="worker-key", redis_url=redis_url)
    async with running_app(settings) as running:
        yield running


def token(app: web.Application, user: str, jobs: tuple[str, ...] = (), ttl: float = 60) -> str:
    return app[AUTHORITY].mint(user, jobs, ttl=ttl)


def forged(claims: dict[str, object], key: str = SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


BAD_TOKENS = {
    "missing": None,
    "empty": "",
    "malformed": "not-a-jwt",
    "forged": forged(
        {"sub": "u1", "exp": int(time.time()) + 60}, key="someone-elses-secret-0123456789abcdef"
    ),
    "expired": forged({"sub": "u1", "exp": int(time.time()) - 10}),
    "no expiry": forged({"sub": "u1"}),
    "no subject": forged({"exp": int(time.time()) + 60}),
    "bad subject": forged({"sub": "<script>", "exp": int(time.time()) + 60}),
    "bad jobs": forged({"sub": "u1", "exp": int(time.time()) + 60, "jobs": "all"}),
    "alg none": jwt.encode({"sub": "u1", "exp": int(time.time()) + 60}, None, algorithm="none"),
}


@pytest.mark.parametrize("name", BAD_TOKENS)
async def test_bad_tokens_are_refused_at_connect(
    node: tuple[str, web.Application], name: str
) -> None:
    url, _ = node
    value = BAD_TOKENS[name]
    watcher = Watcher(url, {"token": value} if value is not None else None)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await watcher.connect()
    assert watcher.connect_errors == [{"message": "unauthorized"}]
    await watcher.client.shutdown()


async def test_a_user_cannot_see_another_users_job_on_any_path(
    node: tuple[str, web.Application],
) -> None:
    url, app = node
    emitter = ProgressEmitter.for_app(app)
    await emitter.send_progress("alice-job", "extracting", 10, owner="alice")
    alice = await Watcher(url, {"token": token(app, "alice")}).connect()
    mallory = await Watcher(url, {"token": token(app, "mallory")}).connect()

    assert (await alice.subscribe("alice-job"))["ok"] is True
    refused = await mallory.call("subscribe", {"job_id": "alice-job"})
    missing = await mallory.call("subscribe", {"job_id": "no-such-job"})
    assert (
        refused
        == missing
        == {"ok": False, "error": {"code": "forbidden", "message": "You may not watch this job."}}
    )
    assert await mallory.call("cancel", {"job_id": "alice-job"}) == refused
    assert (await mallory.call("list_jobs", {}))["jobs"] == []
    assert [j["job_id"] for j in (await alice.call("list_jobs", {}))["jobs"]] == ["alice-job"]

    mallory_token = token(app, "mallory")
    for method, path in [("GET", ""), ("GET", "/events"), ("POST", "/cancel")]:
        status, body = await http_json(
            method, f"{url}/api/jobs/alice-job{path}", token=mallory_token
        )
        missing_status, missing_body = await http_json(
            method, f"{url}/api/jobs/no-such-job{path}", token=mallory_token
        )
        assert status == missing_status == 404
        assert body["error"]["code"] == missing_body["error"]["code"] == "not_found"
    status, _ = await http_json("GET", f"{url}/api/jobs/alice-job", token=token(app, "alice"))
    assert status == 200

    await emitter.send_progress("alice-job", "storing", 50)
    await eventually(lambda: alice.seqs("alice-job") == [2], what="alice's event")
    assert mallory.received == []
    assert (await emitter.service.snapshot("alice-job"))["status"] == "processing"
    await alice.close()
    await mallory.close()


async def test_a_token_naming_a_job_may_watch_it_before_it_exists(
    node: tuple[str, web.Application],
) -> None:
    url, app = node
    guest = await Watcher(url, {"token": token(app, "guest", ("upload-9",))}).connect()
    assert await guest.subscribe("upload-9") == {
        "ok": True,
        "job": None,
        "events": [],
        "recovered": False,
    }
    await ProgressEmitter.for_app(app).send_progress("upload-9", "extracting", 5, owner="owner")
    await eventually(lambda: guest.seqs("upload-9") == [1], what="the first event")
    assert (await guest.call("subscribe", {"job_id": "upload-10"}))["ok"] is False
    await guest.close()


async def test_a_socket_is_disconnected_when_its_token_expires(
    node: tuple[str, web.Application],
) -> None:
    url, app = node
    short = await Watcher(url, {"token": token(app, "alice", ttl=1.5)}).connect()
    long = await Watcher(url, {"token": token(app, "alice", ttl=600)}).connect()
    await eventually(lambda: short.disconnects, within=10, what="the expiry disconnect")
    assert short.disconnects == ["server disconnect"]
    assert long.client.connected and long.disconnects == []
    await long.close()


async def test_progress_over_http_needs_the_api_key(node: tuple[str, web.Application]) -> None:
    url, app = node
    body = {"step": "extracting", "progress": 10}
    for presented in (None, "wrong-key", token(app, "alice")):
        status, reply = await http_json("POST", f"{url}/api/jobs/j1/progress", body, presented)
        assert (status, reply["error"]["code"]) == (401, "unauthorized")
    status, reply = await http_json("POST", f"{url}/api/jobs/j1/progress", body, "worker-key")
    assert status == 202 and reply["event"]["seq"] == 1


async def test_creating_a_job_returns_a_token_scoped_to_it(
    node: tuple[str, web.Application],
) -> None:
    url, app = node
    status, reply = await http_json(
        "POST", f"{url}/api/jobs", {"filename": "a.csv"}, token(app, "alice")
    )
    assert status == 201 and reply["job"]["owner"] == "alice"
    claims = jwt.decode(reply["token"], SECRET, algorithms=["HS256"])
    assert claims["jobs"] == [reply["job"]["job_id"]]
    status, reply = await http_json(
        "POST", f"{url}/api/jobs", {"owner": "bob"}, token(app, "alice")
    )
    assert status == 403
    status, reply = await http_json("POST", f"{url}/api/jobs", {"owner": "bob"}, "worker-key")
    assert status == 201 and reply["job"]["owner"] == "bob"
