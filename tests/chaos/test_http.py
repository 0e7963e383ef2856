"""Hostile HTTP requests against a real node, while another user watches a job on it.

Rows of issue 14: 1,500 wrong API keys (no slowdown, no 429); a multipart part header with a
raw NUL in the filename or a 20 KB header line (500 and a traceback); job ids ``.`` and ``..``
(valid, yet no URL reaches them); a job-scoped token (created jobs with no owner); ``exp`` as a
numeric string in a correctly signed token (accepted); a route answering a bad input with a body
that is not JSON.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import aiohttp
import jwt
import pytest

from tests.chaos.support import API_KEY, control, log_since, log_size, node
from tests.support import ServerProcess

SECRET = "chaos-secret-0123456789-0123456789-0123"
BOUNDARY = "chaos-boundary"
#: The attacker's own source address: the throttle is per address, and the control user's
#: worker (127.0.0.1) must not pay for it. Every address of 127.0.0.0/8 is this machine.
ATTACKER = "127.0.0.3"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with node(tmp_path_factory.mktemp("http"), TIDINGS_SECRET=SECRET) as running:
        yield running


def _token(**claims: Any) -> str:
    return jwt.encode({"sub": "alice", "exp": 4_000_000_000, **claims}, SECRET, "HS256")


async def test_wrong_api_keys_are_answered_429_and_others_carry_on(server: ServerProcess) -> None:
    statuses: list[int] = []
    connector = aiohttp.TCPConnector(local_addr=(ATTACKER, 0))
    async with control(server.url, SECRET), aiohttp.ClientSession(connector=connector) as attacker:
        for attempt in range(1500):
            async with attacker.post(
                f"{server.url}/api/jobs/guess/progress",
                json={"step": "s"},
                headers={"Authorization": f"Bearer guess-{attempt}"},
            ) as reply:
                assert reply.content_type == "application/json"
                statuses.append(reply.status)
    print(f"\n{statuses.count(401)} answered 401, {statuses.count(429)} answered 429")
    assert statuses[:100] == [401] * 100  # the burst: a worker with a typo is told why
    assert statuses.count(429) > 1200  # the unfixed node answered 1,500 times 401


def _part(disposition: str, data: bytes, headers: str = "") -> bytes:
    head = f"--{BOUNDARY}\r\nContent-Disposition: form-data; {disposition}\r\n{headers}\r\n"
    return head.encode() + data + f"\r\n--{BOUNDARY}--\r\n".encode()


@pytest.mark.parametrize(
    "body",
    [
        _part('name="files"; filename="a\x00b.csv"', b"a,b\n"),
        _part('name="files"; filename="a.csv"', b"a,b\n", f"X-Long: {'a' * 20_000}\r\n"),
    ],
    ids=["nul-in-filename", "20-kb-header-line"],
)
async def test_a_malformed_part_header_is_a_json_400_without_a_traceback(
    server: ServerProcess, body: bytes
) -> None:
    before = log_size(server)
    headers = {
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        "Authorization": f"Bearer {_token()}",
    }
    async with (
        control(server.url, SECRET),
        aiohttp.ClientSession() as session,
        session.post(f"{server.url}/api/upload", data=body, headers=headers) as reply,
    ):
        assert reply.status == 400
        assert (await reply.json())["error"]["code"] == "invalid_request"
    assert "Traceback" not in log_since(server, before)


async def test_dot_job_ids_are_refused_where_they_could_be_made(server: ServerProcess) -> None:
    async with aiohttp.ClientSession() as session:
        for job_id, status in ((".", 400), ("..", 400), ("...", 201)):  # "...": the control arm
            async with session.post(
                f"{server.url}/api/jobs",
                json={"job_id": job_id},
                headers={"Authorization": f"Bearer {API_KEY}"},
            ) as reply:
                assert reply.status == status, await reply.text()


@pytest.mark.parametrize(
    ("claims", "status"),
    [({}, 200), ({"exp": "4000000000"}, 401)],
)
async def test_exp_must_be_a_number(
    server: ServerProcess, claims: dict[str, Any], status: int
) -> None:
    headers = {"Authorization": f"Bearer {_token(**claims)}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{server.url}/api/jobs", headers=headers) as reply,
    ):
        assert reply.status == status


async def test_a_job_token_creates_nothing(server: ServerProcess) -> None:
    async with aiohttp.ClientSession() as session:
        user = {"Authorization": f"Bearer {_token()}"}
        async with session.post(f"{server.url}/api/jobs", json={}, headers=user) as reply:
            assert reply.status == 201  # the control arm
            job_token = (await reply.json())["token"]
        scoped = {"Authorization": f"Bearer {job_token}"}
        async with session.post(f"{server.url}/api/jobs", json={}, headers=scoped) as reply:
            assert reply.status == 403
            assert (await reply.json())["error"]["code"] == "forbidden"


BAD_REQUESTS = [
    ("POST", "/api/jobs", b"{", {}),
    ("POST", "/api/jobs", b"not gzip", {"Content-Encoding": "gzip"}),
    ("POST", "/api/jobs", b"[]", {}),
    ("GET", "/api/jobs/%00", None, {}),
    ("GET", "/api/jobs/x/events?since=abc&epoch=e", None, {}),
    ("GET", "/api/jobs/x/stream", None, {"Last-Event-ID": "zz"}),
    ("POST", "/api/jobs/x/cancel", b"{", {}),
    ("POST", "/api/jobs/x/progress", b"{", {}),
    ("POST", "/api/upload", b"--x\r\n", {"Content-Type": "multipart/form-data; boundary=x"}),
    ("POST", "/api/upload", b"", {"Content-Type": "text/plain"}),
    ("GET", "/static/..%2f..%2fetc%2fpasswd", None, {}),
    ("PUT", "/api/jobs", None, {}),
    ("GET", "/nowhere", None, {}),
]


async def test_every_route_answers_a_bad_input_in_json(server: ServerProcess) -> None:
    auth = {"Authorization": f"Bearer {_token()}"}
    # A connection each: aiohttp drops a connection whose body it could not decode.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        for method, path, body, headers in BAD_REQUESTS:
            try:
                async with session.request(
                    method, server.url + path, data=body, headers={**auth, **headers}
                ) as reply:
                    answer = await reply.json(content_type=None)
            except aiohttp.ClientError as exc:
                raise AssertionError(f"{method} {path}: {exc!r}") from exc
            assert 400 <= reply.status < 500, (path, reply.status, answer)
            assert reply.content_type == "application/json", path
            assert set(answer["error"]) == {"code", "message"}, path


async def test_requests_aiohttp_refuses_cost_no_traceback_each(server: ServerProcess) -> None:
    """aiohttp logs a traceback for each request its parser refuses; here, a line a while."""
    import asyncio

    before = log_size(server)
    async with control(server.url, SECRET):
        for _ in range(200):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 20_000 + b"\r\n\r\n")
            await writer.drain()
            answer = await reader.read()
            writer.close()
            assert answer.startswith(b"HTTP/1.0 400 "), answer[:100]
    logged = log_since(server, before)
    print(f"\n200 refused requests: {len(logged)} bytes of log besides the access log")
    assert "Traceback" not in logged and len(logged) < 4096, logged[-2000:]
