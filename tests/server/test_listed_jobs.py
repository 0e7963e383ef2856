"""Job lists in the seed documents' shape: every Snapshot field, and ``id``, ``type``,
``filename`` on top (``created_at`` is the Snapshot's own), wherever a job is listed, on both
stores; the documents' own ``curl`` lines read an upload back as their example shows it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from tidings.web.keys import SERVICE

from tests.ingest import samples
from tests.ingest.support import finished, settings_for
from tests.support import Watcher, http_json, running_app

#: The fields of the documents' ``GET /api/jobs`` example entry.
DOCUMENTED = {"id", "type", "status", "filename", "progress", "created_at"}
SEED_FIELDS = {"id", "type", "filename"}

Node = tuple[str, web.Application]


@pytest.fixture
async def node(store_url: str | None, tmp_path: Path) -> AsyncIterator[Node]:
    async with running_app(settings_for(tmp_path, store_url)) as running:
        yield running


async def create(url: str, body: dict[str, Any]) -> None:
    status, reply = await http_json("POST", f"{url}/api/jobs", body)
    assert status == 201, reply
    # Lists are newest first by creation time in milliseconds, ties by id (as Redis orders a
    # sorted set): jobs made in one millisecond would be listed by id, not in the order made.
    await asyncio.sleep(0.002)


async def test_every_list_gives_the_snapshot_with_the_documents_fields(node: Node) -> None:
    url, app = node
    await create(url, {"job_id": "plain", "owner": "u1"})
    await create(url, {"job_id": "report", "owner": "u1", "filename": "a.csv"})
    await create(url, {"job_id": "odd", "owner": "u1", "extra": {"type": 7, "filename": ["x"]}})
    await create(url, {"job_id": "typed", "owner": "u1", "extra": {"type": "report"}})
    expected = {
        "typed": ("report", None),
        "odd": ("job", None),  # a type or filename that is not text is not passed on as one
        "report": ("job", "a.csv"),
        "plain": ("job", None),
    }

    _, mine = await http_json("GET", f"{url}/api/jobs?user_id=u1")
    _, recent = await http_json("GET", f"{url}/api/jobs/recent")
    watcher = await Watcher(url, {"user_id": "u1"}).connect()
    ack = await watcher.call("list_jobs", {})
    await watcher.close()
    assert ack["ok"] is True
    details = [(await http_json("GET", f"{url}/api/jobs/{job_id}"))[1] for job_id in expected]

    for answer in (mine["jobs"], recent["jobs"], ack["jobs"], details):
        assert [job["id"] for job in answer] == list(expected)  # newest first; id is job_id
        for job in answer:
            assert (job["type"], job["filename"]) == expected[job["id"]]
            snapshot = await app[SERVICE].snapshot(job["id"])
            assert {key: job[key] for key in job if key not in SEED_FIELDS} == snapshot
            assert job["id"] == job["job_id"] and job.keys() >= DOCUMENTED
            assert datetime.fromisoformat(job["created_at"]).tzinfo is not None


async def test_a_stream_of_snapshots_is_not_given_the_list_fields(node: Node) -> None:
    """The control: the Snapshot itself is unchanged where the protocol sends it as such."""
    url, _ = node
    await create(url, {"job_id": "plain", "owner": "u1", "filename": "a.csv"})
    watcher = await Watcher(url, {"user_id": "u1"}).connect()
    ack = await watcher.call("subscribe", {"job_id": "plain"})
    await watcher.close()
    assert ack["ok"] is True and not SEED_FIELDS & ack["job"].keys()


async def curl(*args: str) -> Any:
    process = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--fail-with-body", *args, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, out
    return json.loads(out)


async def test_the_documents_curl_lines_list_an_upload_as_their_example(
    store_url: str | None, tmp_path: Path
) -> None:
    """``curl -X POST …/api/upload -F "file=@email.eml" -F "extract_entities=true"``, then
    ``curl …/api/jobs``, as the documents write them; the cookie jar is added (``-c``/``-b``):
    an anonymous upload is listed to the browser that made it, and curl is that browser here."""
    (tmp_path / "email.eml").write_bytes(samples.plain_email())
    jar = str(tmp_path / "cookies")
    async with running_app(settings_for(tmp_path, store_url)) as (url, _):
        upload = await curl(
            "-c", jar, "-X", "POST", f"{url}/api/upload",
            "-F", f"file=@{tmp_path / 'email.eml'}", "-F", "extract_entities=true",
        )  # fmt: skip
        await finished(url, upload["job_id"])
        listing = await curl("-b", jar, f"{url}/api/jobs")
        stranger = await curl(f"{url}/api/jobs")
    [job] = listing["jobs"]
    assert {key: job[key] for key in DOCUMENTED - {"created_at"}} == {
        "id": upload["job_id"],
        "type": "upload",
        "status": "done",
        "filename": "email.eml",
        "progress": 100,
    }
    assert datetime.fromisoformat(job["created_at"]).tzinfo is not None
    assert stranger == {"jobs": []}  # without the browser's cookie, nobody else's uploads
