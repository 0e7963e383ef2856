"""The live page follows any job by its id (``/?job=``, ``/jobs/<id>``, the form) in open mode,
where a job reported by a worker belongs to no user of the page; in Debian's Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from tidings.messages import generate_friendly_status

from tests.e2e.support import run_script, start_server
from tests.support import ServerProcess, http_json

SCRIPT = Path(__file__).with_name("follow_job.mjs")


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    yield from start_server(request)


def test_the_page_follows_a_job_by_its_id(server: ServerProcess) -> None:
    sentences = {
        "duplicate_check": generate_friendly_status(
            "duplicate_check", {"filename": "expenses.csv"}
        ),
        "extracting": generate_friendly_status("extracting", {}),
    }
    run_script(SCRIPT, server, {"scenario": "follow_job", "sentences": sentences})


async def test_jobs_pages_are_the_page_and_refuse_what_is_not_an_id(
    server: ServerProcess,
) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server.url}/jobs/upload-7f3a") as page:
            assert page.status == 200 and "Follow a job by its id" in await page.text()
        async with session.get(f"{server.url}/jobs/a%3Cb") as refused:
            assert refused.status == 404
    status, _ = await http_json("GET", f"{server.url}/api/jobs/upload-7f3a")
    assert status == 404  # the page exists for any id; the job need not
