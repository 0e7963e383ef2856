"""``POST /api/upload`` over real sockets: limits, hostile names, who may upload, concurrency."""

from __future__ import annotations

import asyncio
import re
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from tidings import ProgressEmitter, Settings
from tidings.web.keys import PIPELINES, UPLOAD_DIR
from tidings.web.upload import READ_CHUNK

from tests.ingest import samples
from tests.ingest.support import Gate, finished, settings_for, steps, store_url, upload
from tests.support import eventually, http_json, running_app

Node = tuple[str, web.Application]
BOUNDARY = "tidings-test-boundary-7f3a"
STORED_NAME = re.compile(r"^[0-9a-f]{32}\.upload$")


@pytest.fixture(params=["memory", "redis"])
async def node(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Node]:
    async with running_app(settings_for(tmp_path, store_url(request))) as running:
        yield running


def multipart(*parts: tuple[str, bytes]) -> bytes:
    """A multipart body written by hand, so the Content-Disposition is exactly what a test says."""
    body = b""
    for disposition, data in parts:
        body += (
            (
                f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n"
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + b"\r\n"
        )
    return body + f"--{BOUNDARY}--\r\n".encode()


async def post_raw(url: str, body: Any, content_type: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": content_type or f"multipart/form-data; boundary={BOUNDARY}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/api/upload", data=body, headers=headers) as response,
    ):
        return response.status, await response.json(content_type=None)


def stored(app: web.Application) -> list[Path]:
    return list(app[UPLOAD_DIR].iterdir())


def files_under(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.rglob("*") if path.is_file())


async def test_each_file_gets_a_job_in_order(node: Node) -> None:
    url, _ = node
    files = [("a.csv", samples.chase_csv()), ("b.json", samples.settings_json())]
    status, body = await upload(url, [*files, ("c.eml", samples.plain_email())])
    assert status == 202
    assert [job["filename"] for job in body["jobs"]] == ["a.csv", "b.json", "c.eml"]
    assert all("token" not in job for job in body["jobs"])  # open mode: no tokens
    for job in body["jobs"]:
        assert (await finished(url, job["job_id"]))["status"] == "done"


HOSTILE = [
    ('filename="../../escape.csv"', "escape.csv"),
    ('filename="/etc/passwd"', "passwd"),
    ('filename="..\\\\..\\\\windows.csv"', "windows.csv"),
    ('filename="..%2F..%2Fencoded.csv"', "encoded.csv"),
    ("filename*=UTF-8''evil%0D%0Aname%00%1B%5B31m.csv", "evil name[31m.csv"),
    # markup is neutralised before anything is cut: the name stays the one the user sent
    (
        'filename="<script>alert(1)<%2Fscript>.csv"',
        "\u2039script\u203aalert(1)\u2039/script\u203a.csv",
    ),
    ('filename="<img src=x onerror=alert(1)>.csv"', "\u2039img src=x onerror=alert(1)\u203a.csv"),
    ("filename*=UTF-8''%E2%80%AEvsc.exe", "vsc.exe"),  # a right-to-left override
    ('filename=".."', "unnamed"),
    ('filename="report.csv"', "report.csv"),  # control arm: a plain name is kept as it is
]


async def test_hostile_filenames_are_never_paths_and_are_shown_neutralised(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "deep" / "er" / "uploads"
    settings = Settings(upload_dir=directory)
    async with running_app(settings) as (url, app):
        gate = Gate(app, "initializing_streaming")
        parts = [
            (f'form-data; name="files"; {disposition}', f"n,{index}\n{index},x\n".encode())
            for index, (disposition, _) in enumerate(HOSTILE)
        ]
        status, body = await post_raw(url, multipart(*parts))
        assert status == 202, body
        names = [job["filename"] for job in body["jobs"]]
        assert names == [expected for _, expected in HOSTILE]

        # held before the pipelines read: every stored file has a random name in the directory
        await eventually(lambda: len(gate.arrived) == 4, what="four pipelines started")
        assert len(stored(app)) == len(HOSTILE)
        assert all(STORED_NAME.match(path.name) for path in stored(app))
        assert files_under(tmp_path) == sorted(path.name for path in stored(app))
        gate.release()
        for job in body["jobs"]:
            snapshot = await finished(url, job["job_id"])
            shown = [
                snapshot["extra"]["filename"],
                snapshot["message"],
                snapshot["result"]["filename"],
            ]
            for text in shown:
                # no markup and no path; a "/" left inside neutralised markup is only text
                assert not set(text) & set("<>\\")
                assert not any(unicodedata.category(char) in ("Cc", "Cf") for char in text)
            assert snapshot["extra"]["filename"] == job["filename"]


async def test_a_body_whose_length_is_over_the_limit_is_refused_before_writing(
    tmp_path: Path,
) -> None:
    async with running_app(settings_for(tmp_path, max_upload_bytes=10_000)) as (url, app):
        status, body = await upload(url, [("big.csv", b"x," * 10_000)], query="?user_id=u1")
        assert status == 413
        assert body == {
            "error": {
                "code": "too_large",
                "message": "The upload is larger than the limit of 10,000 bytes.",
            }
        }
        assert stored(app) == []
        assert (await http_json("GET", f"{url}/api/jobs?user_id=u1"))[1] == {"jobs": []}
        # control arm: under the limit the same request goes through
        status, body = await upload(url, [("small.csv", b"a,b\n1,2\n")], query="?user_id=u1")
        assert status == 202


async def test_a_streamed_body_over_the_limit_is_cut_off_and_the_partial_file_removed(
    tmp_path: Path,
) -> None:
    # aiohttp holds back one read chunk to find the boundary: send three before looking
    first = 3 * READ_CHUNK
    limit = first + READ_CHUNK
    async with running_app(settings_for(tmp_path, max_upload_bytes=limit)) as (url, app):
        written: list[int] = []

        async def body() -> AsyncIterator[bytes]:  # no length: sent chunked
            yield (
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; '
                'filename="stream.csv"\r\n\r\n'
            ).encode()
            yield b"a" * first
            # the server has begun writing the file to disk...
            await eventually(
                lambda: any(path.stat().st_size for path in stored(app)), what="a partial file"
            )
            written.append(stored(app)[0].stat().st_size)
            yield b"b" * first  # ...and now goes past the limit
            yield f"\r\n--{BOUNDARY}--\r\n".encode()

        status, reply = await post_raw(url, body())
        assert status == 413 and reply["error"]["code"] == "too_large"
        assert written and written[0] > 0  # the partial file existed
        assert stored(app) == []  # and is gone
        assert app[PIPELINES].running == 0


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (
            b'{"files": []}',
            "application/json",
            "Send the files as multipart/form-data, in the field named files.",
        ),
        (
            multipart(('form-data; name="note"', b"hello")),
            None,
            "No files were uploaded: send one or more in the field files.",
        ),
        (
            multipart(
                ('form-data; name="files"; filename="a.csv"', b"a,b\n"),
                ('form-data; name="extract_entities"', b"perhaps"),
            ),
            None,
            "extract_entities is true or false.",
        ),
        (
            # cut off in the middle of a file, with no closing boundary
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; '
            'filename="a.csv"\r\n\r\na,b\n1,2'.encode(),
            None,
            "The multipart body is malformed.",
        ),
    ],
)
async def test_bad_requests_are_refused_and_leave_no_file(
    node: Node, body: bytes, content_type: str | None, message: str
) -> None:
    url, app = node
    status, reply = await post_raw(url, body, content_type)
    assert status == 400
    assert reply == {"error": {"code": "invalid_request", "message": message}}
    assert stored(app) == []


async def test_with_a_secret_a_token_is_required_and_each_job_gets_its_own(
    tmp_path: Path,
) -> None:
    secret = "test-secret-with-enough-length-for-hs256"
    async with running_app(settings_for(tmp_path, secret=secret)) as (url, app):
        status, reply = await upload(url, [("a.csv", b"a,b\n1,2\n")])
        assert status == 401 and reply["error"]["code"] == "unauthorized"
        status, reply = await upload(url, [("a.csv", b"a,b\n1,2\n")], token="forged.token.value")
        assert status == 401
        assert stored(app) == []

        from tidings.web.keys import AUTHORITY

        alice = app[AUTHORITY].mint("alice")
        status, reply = await upload(
            url,
            [("a.csv", b"a,b\n1,2\n"), ("b.csv", b"c,d\n3,4\n")],
            token=alice,
            query="?user_id=bob",
        )
        assert status == 202
        for job in reply["jobs"]:
            claims = jwt.decode(job["token"], secret, algorithms=["HS256"])
            assert (claims["sub"], claims["jobs"]) == ("alice", [job["job_id"]])
            snapshot = await finished(url, job["job_id"], token=job["token"])
            assert snapshot["owner"] == "alice"  # the token's user, never ?user_id=
        other = app[AUTHORITY].mint("mallory")
        status, _ = await http_json(
            "GET", f"{url}/api/jobs/{reply['jobs'][0]['job_id']}", token=other
        )
        assert status == 404


async def test_in_open_mode_user_id_names_the_owner(node: Node) -> None:
    url, _ = node
    status, body = await upload(url, [("a.csv", b"a,b\n1,2\n")], query="?user_id=carol")
    assert (await finished(url, body["jobs"][0]["job_id"]))["owner"] == "carol"
    status, body = await upload(url, [("b.csv", b"a,b\n1,2\n")])
    assert status == 202  # no user: the browser gets an identity of its own (a cookie)
    assert (await finished(url, body["jobs"][0]["job_id"]))["owner"].startswith("browser-")


@pytest.mark.parametrize("concurrency", [2, 6])
async def test_a_burst_beyond_the_limit_waits_queued_and_all_finish(
    tmp_path: Path, concurrency: int
) -> None:
    """With the pipelines held at their first step, exactly ``concurrency`` of them start and
    the rest stay queued; the limit of 6 is the control arm, where all six start at once."""
    settings = settings_for(tmp_path, pipeline_concurrency=concurrency)
    async with running_app(settings) as (url, app):
        gate = Gate(app, "initializing_streaming")
        files = [(f"burst-{index}.csv", samples.contacts_csv(index + 3)) for index in range(6)]
        status, body = await upload(url, files)
        assert status == 202
        job_ids = [job["job_id"] for job in body["jobs"]]
        await eventually(lambda: len(gate.arrived) == concurrency, what="the first pipelines")

        statuses = {}
        for job_id in job_ids:
            statuses[job_id] = (await http_json("GET", f"{url}/api/jobs/{job_id}"))[1]["status"]
        started = set(gate.arrived)
        assert all(statuses[job_id] == "processing" for job_id in started)
        waiting = [job_id for job_id in job_ids if job_id not in started]
        assert len(waiting) == 6 - concurrency
        assert all(statuses[job_id] == "queued" for job_id in waiting)
        assert len(gate.arrived) == concurrency  # still: no slot has freed up

        gate.release()
        for job_id in job_ids:
            job = await finished(url, job_id)
            assert job["status"] == "done" and steps(job)[:2] == [
                "queued",
                "initializing_streaming",
            ]
        assert app[PIPELINES].running == 0


async def test_stopping_the_server_interrupts_pipelines_and_removes_its_upload_dir(
    redis_url: str,
) -> None:
    async with running_app(Settings(redis_url=redis_url)) as (url, app):
        directory = app[UPLOAD_DIR]
        gate = Gate(app, "field_detection")
        status, body = await upload(url, [("held.csv", samples.chase_csv())])
        assert status == 202
        job_id = body["jobs"][0]["job_id"]
        await eventually(lambda: gate.arrived == [job_id], what="the pipeline at field_detection")
        assert directory.is_dir() and len(stored(app)) == 1
    assert not directory.exists()
    async with ProgressEmitter.from_url(redis_url) as emitter:
        job = await emitter.service.snapshot(job_id)
    assert job["status"] == "error"
    assert job["error"] == {
        "code": "interrupted",
        "message": "The server stopped before it finished held.csv; please upload it again.",
    }


async def test_a_client_that_goes_away_mid_upload_leaves_no_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_app(settings_for(tmp_path)) as (url, app):
        port = int(url.rsplit(":", 1)[1])
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="files"; '
            'filename="gone.csv"\r\n\r\n'
        ).encode()
        writer.write(
            (
                "POST /api/upload HTTP/1.1\r\nHost: x\r\n"
                f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
                f"Content-Length: {10 * READ_CHUNK}\r\n\r\n"
            ).encode()
            + head
            + b"a" * (3 * READ_CHUNK)
        )
        await writer.drain()
        await eventually(
            lambda: any(path.stat().st_size for path in stored(app)), what="a partial file"
        )
        writer.close()  # gone, with most of the body unsent
        await writer.wait_closed()
        await eventually(lambda: stored(app) == [], what="the partial file removed")
        assert app[PIPELINES].running == 0
    assert not [record for record in caplog.records if record.levelname == "ERROR"]
