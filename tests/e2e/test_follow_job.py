"""The live page follows any job by its id (``/?job=``, ``/jobs/<id>``, the form) in open mode,
where a job reported by a worker belongs to no user of the page; in Debian's Chromium."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tidings.messages import generate_friendly_status

from tests.e2e.test_upload_page import API_KEY, ARTIFACTS, CHROMIUM, PLAYWRIGHT
from tests.support import ROOT, ServerProcess, http_json, server_process

SCRIPT = Path(__file__).with_name("follow_job.mjs")


@pytest.fixture
def server() -> Iterator[ServerProcess]:
    assert shutil.which("node"), "node is not installed"
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)"
    assert PLAYWRIGHT.is_dir(), "playwright-core is missing: npm ci --prefix client_js"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / "follow_job-server.log"
    log.unlink(missing_ok=True)
    with server_process({"TIDINGS_API_KEY": API_KEY}, log=log) as node:
        yield node


def test_the_page_follows_a_job_by_its_id(server: ServerProcess) -> None:
    config = {
        "scenario": "follow_job",
        "url": server.url,
        "artifacts": str(ARTIFACTS),
        "apiKey": API_KEY,
        "sentences": {
            "duplicate_check": generate_friendly_status(
                "duplicate_check", {"filename": "expenses.csv"}
            ),
            "extracting": generate_friendly_status("extracting", {}),
        },
    }
    result = subprocess.run(
        ["node", str(SCRIPT), json.dumps(config)],
        cwd=ROOT,
        env={**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"},
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    output = result.stdout + result.stderr
    print(output)
    assert result.returncode == 0 and output.rstrip().endswith("ok"), output


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
