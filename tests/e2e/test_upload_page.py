"""The live upload page end to end: a real ``tidings serve`` process and Debian's Chromium, driven
by playwright-core from ``upload_page.mjs`` (one scenario per test, each on a fresh server).

The files the page uploads are made here, and every sentence the page must end up showing is made
by the ``messages`` package, so the browser checks the same words the server writes. Screenshots
and each server's log land in ``test-artifacts/e2e/``.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tidings.auth import Authority
from tidings.messages import generate_friendly_status
from tidings.web.page import STATIC_DIR
from tidings.web.upload import display_name

from tests.e2e.support import (
    ARTIFACTS,
    SCRIPT_TIMEOUT,
    SECRET,
    run_script,
    start_server,
)
from tests.support import ServerProcess

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "upload_page.mjs"
#: Seconds a scenario may run; its own watchdog fires first and says where it was.
SCENARIO_TIMEOUT = SCRIPT_TIMEOUT
#: Lines the page's live log keeps (LOG_LIMIT in app.js).
LOG_LIMIT = 200
HOSTILE = "<img src=x onerror=alert(1)>.csv"


def say(step: str, **context: Any) -> str:
    return generate_friendly_status(step, context)


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    yield from start_server(request)


@pytest.fixture
def reload_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    yield from start_server(request, TIDINGS_RELOAD="1")


@pytest.fixture
def secret_server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    yield from start_server(request, TIDINGS_SECRET=SECRET)


def run_scenario(
    scenario: str, node: ServerProcess, timeout: float = SCENARIO_TIMEOUT, **values: Any
) -> str:
    """Run one scenario of upload_page.mjs against ``node``; fail with everything it printed."""
    for stale in ARTIFACTS.glob(f"{scenario}-failure-*.png"):
        stale.unlink()
    config = {"scenario": scenario, "watchdogMs": (timeout - 10) * 1000, **values}
    return run_script(SCRIPT, node, config, timeout)


def sample_files(directory: Path) -> list[dict[str, Any]]:
    """A small CSV, a JSON file and a CSV with a short row, and what each must end as."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "expenses.csv": b"date,description,amount\n"
        b"2026-01-02,Coffee,3.50\n2026-01-03,Train ticket,12.00\n2026-01-04,Lunch,9.75\n",
        "people.json": json.dumps([{"id": 1, "name": "Ada"}, {"id": 2, "name": "Grace"}]).encode(),
        "broken.csv": b"a,b,c\n1,2,3\n4,5\n",
    }
    for name, content in files.items():
        (directory / name).write_bytes(content)
    done = say("complete", filename="expenses.csv", rows=3)
    return [
        {
            "name": "expenses.csv",
            "path": str(directory / "expenses.csv"),
            "status": "done",
            "message": done,
            "timeline": [say("duplicate_check", filename="expenses.csv"), done],
        },
        {
            "name": "people.json",
            "path": str(directory / "people.json"),
            "status": "done",
            "message": say("complete", filename="people.json", rows=2),
        },
        {
            "name": "broken.csv",
            "path": str(directory / "broken.csv"),
            "status": "error",
            "contains": "Line 3 of broken.csv has 2 columns where the header has 3.",
            "error_code": "invalid_file",
            "error_step": "field_detection",
        },
    ]


def mid_job() -> dict[str, Any]:
    """A job the test drives as a worker: halfway before the page reloads, the rest after."""
    name = "quarterly-report.csv"
    return {
        "name": name,
        "before": [
            {"step": "initializing_streaming", "progress": 2, "context": {"filename": name}},
            {
                "step": "hashing",
                "progress": 20,
                "context": {"filename": name, "bytes_done": 1_000_000, "bytes_total": 4_000_000},
            },
            {"step": "duplicate_check", "progress": 32, "context": {"filename": name}},
            {
                "step": "field_detection",
                "progress": 45,
                "context": {"filename": name, "columns": 12},
            },
        ],
        "midMessage": say("field_detection", filename=name, columns=12),
        "midPercent": "45%",
        "after": [
            {"step": "platform_detection", "progress": 60, "context": {"platform": "Stripe"}},
            {"step": "storing", "progress": 95, "context": {"filename": name, "rows": 1204}},
            {
                "step": "complete",
                "status": "done",
                "context": {"filename": name, "rows": 1204},
                "result": {"rows": 1204},
            },
        ],
        "doneMessage": say("complete", filename=name, rows=1204),
    }


def cancel_job() -> dict[str, str]:
    return {"name": "to-cancel.csv", "message": say("cancelled")}


def test_upload_reload_cancel_and_hostile_names(server: ServerProcess, tmp_path: Path) -> None:
    """Three files to their final sentences (one broken, with its error details); a markup name
    dropped and one sent by a worker both show as text; a reload mid-job restores every row and
    the job goes on; a row's Cancel cancels; the page fits a 375 px screen."""
    run_scenario(
        "upload",
        server,
        files=sample_files(tmp_path / "files"),
        hostile={"raw": HOSTILE, "uploaded": display_name(HOSTILE)},
        midJob=mid_job(),
        cancel=cancel_job(),
    )
    for shot in ("upload-mid-job", "upload-desktop", "upload-narrow-375"):
        assert (ARTIFACTS / f"{shot}.png").stat().st_size > 10_000


def test_sse_fallback_when_socketio_cannot_connect(server: ServerProcess, tmp_path: Path) -> None:
    """With /socket.io/ blocked the page says so and follows GET /api/stream: a folder upload,
    a running job, a cancel over HTTP and a reload all work over the stream alone. (The upload
    test is the control arm: there the same page is live over Socket.IO.)"""
    folder = tmp_path / "folder"
    files = sample_files(folder)
    (folder / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")  # skipped, as a folder drop skips it
    run_scenario(
        "fallback",
        server,
        files=files,
        folder=str(folder),
        midJob=mid_job(),
        cancel=cancel_job(),
    )


def test_sse_fetches_a_job_once_for_many_events_past_a_hole(server: ServerProcess) -> None:
    """Over the event stream, three events of a job first seen midway fetch its state once, and
    the two that came while it was fetched are applied after it (with one request per event, the
    page would end on the fetched state, behind the last event)."""
    run_scenario("refetch", server)


def test_user_token_from_the_fragment(secret_server: ServerProcess, tmp_path: Path) -> None:
    """With a secret the page takes its user token from ``#token=``, drops it from the address
    bar, uploads and follows with it, and keeps it across a reload; a tab without it may not
    upload (the control arm); a tab with an expired one says the session expired, in text, and
    does not fall back to the event stream."""
    authority = Authority(SECRET)
    run_scenario(
        "token",
        secret_server,
        files=sample_files(tmp_path / "files")[:1],
        token=authority.mint("e2e-user", ttl=600),
        expiredToken=authority.mint("e2e-user", ttl=-60),
        sessionExpired="Your session has expired - reopen the link",
    )


@pytest.fixture
def probes() -> Iterator[dict[str, str]]:
    """Names of a stylesheet and a script the reload test writes into the page's directory;
    removed afterwards even when the browser side died."""
    nonce = secrets.token_hex(6)
    names = {"css": f"e2e-probe-{nonce}.css", "js": f"e2e-probe-{nonce}.js"}
    try:
        yield names
    finally:
        for name in names.values():
            (STATIC_DIR / name).unlink(missing_ok=True)


def test_hot_reload_swaps_css_in_place(
    reload_server: ServerProcess, probes: dict[str, str]
) -> None:
    """Under --reload a changed stylesheet applies with no navigation (the page keeps a marker it
    was given), and a changed script reloads the page (the marker is gone: the control arm)."""
    run_scenario("reload", reload_server, staticDir=str(STATIC_DIR), probe=probes)


@pytest.mark.timeout(240)
def test_a_thousand_files(server: ServerProcess) -> None:
    """A thousand dropped files: one row each, every one done, the overview at 100%, the live log
    capped. Prints how long it took and the page's long tasks (figures, not assertions)."""
    run_scenario("many", server, timeout=220, count=1000, logLimit=LOG_LIMIT)


def test_upload_settings_and_feedback(server: ServerProcess, tmp_path: Path) -> None:
    """Entity extraction, "Upload all" (a waiting file cancelled) and two uploads at a time as the
    page's settings say, with the uploading count; notifications on completion, on a failed job
    and on an upload cut off, a milestone at ten files, the
    pulse and the fade (none under reduced motion), freshness colours, the time of an error, and
    jobs finished before the page was opened shown as minutes old rather than "just now"."""
    directory = tmp_path / "files"
    directory.mkdir()
    files = []
    for name, content in {
        "contacts.csv": b"name,email\nAda,ada@example.com\nGrace,grace@example.com\n",
        "links.csv": b"title,url\nDocs,https://example.com/docs\n",
        "payments.csv": b"date,amount\n2026-01-02,$12.50\n",
    }.items():
        (directory / name).write_bytes(content)
        files.append({"name": name, "path": str(directory / name)})
    (directory / "broken.csv").write_bytes(b"a,b,c\n1,2,3\n4,5\n")
    for name in ("spare.csv", "cut-off.csv"):
        (directory / name).write_bytes(b"a,b\n1,2\n")
    run_scenario(
        "controls",
        server,
        files=files,
        spare={"name": "spare.csv", "path": str(directory / "spare.csv")},
        broken={"name": "broken.csv", "path": str(directory / "broken.csv")},
        cutOff={"name": "cut-off.csv", "path": str(directory / "cut-off.csv")},
    )
    assert (ARTIFACTS / "controls.png").stat().st_size > 10_000
