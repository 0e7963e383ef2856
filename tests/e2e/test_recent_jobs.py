"""The live page lists the server's recent jobs on an open server, a worker's job without an
owner among them, and follows the one chosen; with a secret it lists none (the control arm).
In Debian's Chromium, on a real ``tidings serve``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tidings.auth import Authority
from tidings.messages import generate_friendly_status

from tests.e2e.test_upload_page import API_KEY, ARTIFACTS, CHROMIUM, PLAYWRIGHT, SECRET
from tests.support import ROOT, ServerProcess, server_process

SCRIPT = Path(__file__).with_name("recent_jobs.mjs")


def start(request: pytest.FixtureRequest, **env: str) -> Iterator[ServerProcess]:
    assert shutil.which("node"), "node is not installed"
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)"
    assert PLAYWRIGHT.is_dir(), "playwright-core is missing: npm ci --prefix client_js"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / f"{request.node.name}-server.log"
    log.unlink(missing_ok=True)
    with server_process({"TIDINGS_API_KEY": API_KEY, **env}, log=log) as node:
        yield node


@pytest.fixture
def open_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    yield from start(request)


@pytest.fixture
def secret_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    yield from start(request, TIDINGS_SECRET=SECRET)


def run(scenario: str, node: ServerProcess, **values: Any) -> None:
    config = {
        "scenario": scenario,
        "url": node.url,
        "artifacts": str(ARTIFACTS),
        "apiKey": API_KEY,
        "sentences": {
            "duplicate_check": generate_friendly_status(
                "duplicate_check", {"filename": "nightly.csv"}
            ),
            "extracting": generate_friendly_status("extracting", {}),
        },
        **values,
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


def test_recent_jobs_list_a_workers_job_and_follow_it(open_server: ServerProcess) -> None:
    run("recent_jobs", open_server)


def test_recent_jobs_are_not_listed_with_a_secret(secret_server: ServerProcess) -> None:
    """The control arm: the same page, the same worker's job; the server refuses the list (403,
    seen by the page itself) and the page shows none."""
    token = Authority(SECRET).mint("e2e-user", ttl=600)
    run("recent_jobs_secret", secret_server, token=token)
