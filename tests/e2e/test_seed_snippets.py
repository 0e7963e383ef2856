"""The seed documents' React snippets (``client_js/test/compat/seed-snippets.tsx``) in Debian's
Chromium against a real ``tidings serve``: bundled with esbuild into a page on the server's own
origin, and read as a person reads them (``seed_snippets.mjs``). The modal shows each upload's
progress and closes itself once all are done; the control arm is the same modal on an upload that
never finishes, which stays open."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.support import run_script, start_server
from tests.support import ServerProcess

SCRIPT = Path(__file__).with_name("seed_snippets.mjs")


@pytest.fixture
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    yield from start_server(request)


def test_the_modal_follows_each_upload_and_closes_itself_when_all_are_done(
    server: ServerProcess,
) -> None:
    run_script(SCRIPT, server, {"scenario": "seed_modal"})


def test_the_modal_stays_open_while_an_upload_never_finishes(server: ServerProcess) -> None:
    """The control arm: one upload done, the other still going, then failed; the modal closes
    only by its Close button."""
    run_script(SCRIPT, server, {"scenario": "seed_modal_unfinished"})


def test_the_documents_uploads_job_list_and_progress_stream(server: ServerProcess) -> None:
    run_script(SCRIPT, server, {"scenario": "seed_uploads"})
