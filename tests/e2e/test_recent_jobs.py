"""The live page lists the server's recent jobs on an open server, a worker's job without an
owner among them, and follows the one chosen; with a secret it lists none (the control arm).
In Debian's Chromium, on a real ``tidings serve``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tidings.auth import Authority
from tidings.messages import generate_friendly_status

from tests.e2e.support import SECRET, run_script, start_server
from tests.support import ServerProcess

SCRIPT = Path(__file__).with_name("recent_jobs.mjs")


@pytest.fixture
def open_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    yield from start_server(request)


@pytest.fixture
def secret_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    yield from start_server(request, TIDINGS_SECRET=SECRET)


def run(scenario: str, node: ServerProcess, **values: Any) -> None:
    sentences = {
        "duplicate_check": generate_friendly_status("duplicate_check", {"filename": "nightly.csv"}),
        "extracting": generate_friendly_status("extracting", {}),
    }
    run_script(SCRIPT, node, {"scenario": scenario, "sentences": sentences, **values})


def test_recent_jobs_list_a_workers_job_and_follow_it(open_server: ServerProcess) -> None:
    run("recent_jobs", open_server)


def test_recent_jobs_are_not_listed_with_a_secret(secret_server: ServerProcess) -> None:
    """The control arm: the same page, the same worker's job; the server refuses the list (403,
    seen by the page itself) and the page shows none."""
    token = Authority(SECRET).mint("e2e-user", ttl=600)
    run("recent_jobs_secret", secret_server, token=token)
