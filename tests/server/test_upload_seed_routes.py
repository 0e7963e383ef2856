"""The upload routes as the seed documents call them, with their own ``curl`` lines and shapes,
and the browser identity that lists an anonymous browser's uploads to it alone."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp

from tests.ingest import samples
from tests.ingest.support import finished, settings_for
from tests.support import running_app


async def curl(*args: str) -> dict[str, Any]:
    process = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--fail-with-body", *args, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, out
    return json.loads(out)  # type: ignore[no-any-return]


async def test_the_documents_curl_line_uploads_one_file(tmp_path: Path) -> None:
    """``curl -X POST …/api/upload -F "file=@email.eml" -F "extract_entities=true"``, as written."""
    (tmp_path / "email.eml").write_bytes(samples.plain_email())
    async with running_app(settings_for(tmp_path)) as (url, _):
        reply = await curl(
            "-X",
            "POST",
            f"{url}/api/upload",
            "-F",
            f"file=@{tmp_path / 'email.eml'}",
            "-F",
            "extract_entities=true",
        )
        assert {key: reply[key] for key in ("filename", "status")} == {
            "filename": "email.eml",
            "status": "queued",
        }
        assert reply["jobs"] == [{key: reply[key] for key in ("job_id", "filename", "status")}]
        done = await finished(url, reply["job_id"])
    assert done["status"] == "done"
    assert "entity_extraction" in [step["step"] for step in done["steps"]]


async def test_files_upload_answers_with_upload_ids(tmp_path: Path) -> None:
    for name in ("a.csv", "b.csv"):
        (tmp_path / name).write_bytes(samples.chase_csv())
    async with running_app(settings_for(tmp_path)) as (url, _):
        reply = await curl(
            f"{url}/api/files/upload",
            "-F",
            f"files[]=@{tmp_path / 'a.csv'}",
            "-F",
            f"files=@{tmp_path / 'b.csv'}",
            "-F",
            "path=statements/2026",
        )
        assert (reply["message"], reply["uploaded"]) == ("Files uploaded", 2)
        assert reply["upload_ids"] == [job["job_id"] for job in reply["jobs"]]
        for upload_id in reply["upload_ids"]:
            job = await finished(url, upload_id)
            assert job["extra"]["path"] == "statements/2026"


async def test_a_path_that_is_not_a_label_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_bytes(samples.chase_csv())
    form = aiohttp.FormData()
    form.add_field("files", (tmp_path / "a.csv").read_bytes(), filename="a.csv")
    form.add_field("path", "x\x00y")
    async with (
        running_app(settings_for(tmp_path)) as (url, _),
        aiohttp.ClientSession() as http,
        http.post(f"{url}/api/files/upload", data=form) as response,
    ):
        body = await response.json()
    assert response.status == 400 and body["error"]["code"] == "invalid_request"


async def test_an_anonymous_browser_sees_its_own_uploads_and_nobody_elses(tmp_path: Path) -> None:
    async def listed(http: aiohttp.ClientSession) -> list[str]:
        async with http.get(f"{url}/api/jobs") as response:
            return [job["job_id"] for job in (await response.json())["jobs"]]

    async with (
        running_app(settings_for(tmp_path)) as (url, _),
        # unsafe: keep cookies of an IP address, as a browser does for 127.0.0.1
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as mine,
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as theirs,
    ):
        assert await listed(mine) == []
        form = aiohttp.FormData()
        form.add_field("files", samples.chase_csv(), filename="mine.csv")
        async with mine.post(f"{url}/api/upload", data=form) as response:
            job_id = (await response.json())["job_id"]
            cookie = response.cookies["tidings_browser"]
        assert cookie["httponly"] and cookie["samesite"] == "Lax"
        assert await listed(mine) == [job_id]  # the browser that uploaded sees it
        assert await listed(theirs) == []  # the control: another browser does not
        form = aiohttp.FormData()
        form.add_field("files", samples.chase_csv(), filename="theirs.csv")
        async with theirs.post(f"{url}/api/upload", data=form) as response:
            their_job = (await response.json())["job_id"]
        assert await listed(theirs) == [their_job]
        assert await listed(mine) == [job_id]
