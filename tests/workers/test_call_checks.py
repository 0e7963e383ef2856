"""A bad argument raises at the call, even when coalescing would have held the update; and
``job(..., filename=)`` names the file in every sentence of the job."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from tidings import ProgressEmitter, Settings, SyncProgressEmitter
from tidings.errors import Conflict, PayloadTooLarge
from tidings.messages import generate_friendly_status
from tidings.worker.checks import CallChecks

from tests.support import running_app

LIMIT = 1024


@pytest.fixture
async def app() -> AsyncIterator[web.Application]:
    # A long window: anything held stays held for the whole test unless it raises at the call.
    settings = Settings(coalesce_window=30, max_extra_bytes=LIMIT)
    async with running_app(settings) as (_, application):
        yield application


async def test_another_owner_raises_at_the_call_not_from_close(app: web.Application) -> None:
    emitter = ProgressEmitter.for_app(app)
    assert await emitter.send_progress("owned", "extracting", 10, owner="alice") is not None
    with pytest.raises(Conflict, match="belongs to another owner"):
        await emitter.send_progress("owned", "extracting", 20, owner="mallory")
    assert await emitter.send_progress("owned", "extracting", 30, owner="alice") is None  # held
    await emitter.aclose()  # nothing left to raise here


async def test_an_owner_the_emitter_has_not_seen_accepted_is_never_held(
    app: web.Application,
) -> None:
    first = ProgressEmitter.for_app(app)
    await first.send_progress("theirs", "extracting", 10, owner="alice")
    second = ProgressEmitter.for_app(app)
    await second.send_progress("theirs", "extracting", 20)  # no owner: fine, and sent
    with pytest.raises(Conflict):  # within the window, yet sent at once: only the store knows
        await second.send_progress("theirs", "extracting", 30, owner="mallory")
    await first.aclose()
    await second.aclose()


async def test_extra_over_the_limit_raises_at_the_call(app: web.Application) -> None:
    emitter = ProgressEmitter.for_app(app)
    await emitter.send_progress("big", "extracting", 10, extra={"a": "x" * 600})
    with pytest.raises(PayloadTooLarge, match="extra would grow to"):  # merged: over the limit
        await emitter.send_progress("big", "extracting", 20, extra={"b": "y" * 600})
    with pytest.raises(PayloadTooLarge, match="larger than"):  # alone: over the limit
        await emitter.send_progress("big", "extracting", 30, extra={"c": "z" * 2000})
    assert await emitter.send_progress("big", "extracting", 40, extra={"a": None}) is None
    await emitter.aclose()


def test_a_key_written_again_and_again_counts_once_not_once_per_patch() -> None:
    """The merged extra is measured only when the patches so far could have grown it past the
    limit, and then exactly: rewriting one key never adds up."""
    checks = CallChecks(LIMIT)
    for _ in range(20):  # 4 KB of patches; the extra stays one key of 200 bytes
        checks.check("same", {"step": "s", "extra": {"a": "x" * 200}})
    with pytest.raises(PayloadTooLarge, match="extra would grow to"):  # control: keys add up
        for index in range(20):
            checks.check("grows", {"step": "s", "extra": {f"k{index}": "x" * 200}})


def test_a_refused_patch_leaves_the_jobs_extra_as_it_was() -> None:
    """The job's extra is patched in place when it surely fits, and measured on a copy when it
    may not: a refused patch is in neither."""
    checks = CallChecks(LIMIT)
    checks.check("kept", {"step": "s", "extra": {"a": "x" * 500}})
    with pytest.raises(PayloadTooLarge, match="extra would grow to"):
        checks.check("kept", {"step": "s", "extra": {"b": "y" * 600}})
    # Measured (the patches add up past the limit): a alone fits; a with b would not.
    checks.check("kept", {"step": "s", "extra": {"a": "x" * 520}})


async def test_control_the_store_alone_would_raise_only_from_close(app: web.Application) -> None:
    """Without the checks (the store is the only judge), the held update raises from close():
    what the worker saw before the fix."""
    emitter = ProgressEmitter.for_app(app)
    emitter._checks.check = lambda job_id, call: True  # type: ignore[method-assign]
    await emitter.send_progress("late", "extracting", 10, extra={"a": "x" * 600})
    assert await emitter.send_progress("late", "extracting", 20, extra={"b": "y" * 600}) is None
    with pytest.raises(PayloadTooLarge):
        await emitter.aclose()


async def test_the_filename_of_job_names_the_file_in_every_sentence(app: web.Application) -> None:
    emitter = ProgressEmitter.for_app(app)
    async with emitter.job("named", filename="expenses.csv") as job:
        moved = await job.progress("duplicate_check", 15)
        assert moved is not None
        assert moved["message"] == generate_friendly_status(
            "duplicate_check", {"filename": "expenses.csv"}
        )
        assert "expenses.csv" in moved["message"]
        own = await job.progress("extracting", 50, context={"filename": "other.csv"})
        assert own is not None and own["message"] == generate_friendly_status(
            "extracting", {"filename": "other.csv"}
        )
    job_state = await emitter.service.snapshot("named")
    assert job_state["message"] == generate_friendly_status(
        "complete", {"filename": "expenses.csv"}
    )
    # Control: an update without the handle says "this file".
    plain = await emitter.send_progress("plain", "duplicate_check", 15)
    assert plain is not None and "expenses.csv" not in plain["message"]
    await emitter.aclose()


def test_the_blocking_emitter_checks_at_the_call_too(redis_url: str) -> None:
    settings = Settings(coalesce_window=30, max_extra_bytes=LIMIT)
    with SyncProgressEmitter(redis_url, settings) as emitter:
        emitter.send_progress("sync-big", "extracting", 10, extra={"a": "x" * 600})
        with pytest.raises(PayloadTooLarge):
            emitter.send_progress("sync-big", "extracting", 20, extra={"b": "y" * 600})
        with emitter.job("sync-named", filename="rows.csv") as job:
            moved = job.progress("duplicate_check", 15)
            assert moved is not None and "rows.csv" in moved["message"]
