"""The worker's API in the server process and from another process."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from tidings import InvalidRequest, JobTerminal, ProgressEmitter, Settings

from tests.support import ROOT, Watcher, eventually, running_app, server_process


@pytest.fixture
async def app() -> AsyncIterator[web.Application]:
    async with running_app(Settings()) as (_, application):
        yield application


async def test_job_context_completes_on_a_clean_exit(app: web.Application) -> None:
    emitter = ProgressEmitter.for_app(app)
    async with emitter.job("ctx-1", owner="u1", filename="a.csv") as job:
        await job.progress("extracting", 40, context={"filename": "a.csv"})
    snapshot = await emitter.service.snapshot("ctx-1")
    assert (snapshot["status"], snapshot["owner"], snapshot["extra"]) == (
        "done",
        "u1",
        {"filename": "a.csv"},
    )
    assert [s["step"] for s in snapshot["steps"]] == ["queued", "extracting", "complete"]


async def test_job_context_fails_with_the_exceptions_text_and_reraises(
    app: web.Application,
) -> None:
    emitter = ProgressEmitter.for_app(app)
    with pytest.raises(ValueError, match="Row 12 has 3 columns"):
        async with emitter.job("ctx-2") as job:
            await job.progress("field_detection", 30)
            raise ValueError("Row 12 has 3 columns, expected 5")
    snapshot = await emitter.service.snapshot("ctx-2")
    assert snapshot["status"] == "error"
    assert snapshot["error"] == {"code": "failed", "message": "Row 12 has 3 columns, expected 5"}
    assert snapshot["steps"][-1] | {"started_at": "", "updated_at": ""} == {
        "step": "field_detection",
        "status": "error",
        "progress": 30,
        "message": snapshot["message"],
        "started_at": "",
        "updated_at": "",
    }


async def test_a_cancel_ends_the_job_block_quietly(app: web.Application) -> None:
    emitter = ProgressEmitter.for_app(app)
    reached = []
    async with emitter.job("ctx-3") as job:
        await job.progress("extracting", 10)
        await emitter.cancel("ctx-3")
        assert await job.is_cancel_requested()
        await job.progress("storing", 50)
        reached.append("after cancel")  # pragma: no cover - the line above raises
    assert reached == []
    assert (await emitter.service.snapshot("ctx-3"))["status"] == "cancelled"


async def test_finishing_inside_the_block_is_not_an_error(app: web.Application) -> None:
    emitter = ProgressEmitter.for_app(app)
    async with emitter.job("ctx-4") as job:
        await job.complete({"rows": 3})
    snapshot = await emitter.service.snapshot("ctx-4")
    assert snapshot["status"] == "done" and snapshot["result"] == {"rows": 3}
    with pytest.raises(JobTerminal):
        await emitter.send_progress("ctx-4", "extracting")


async def test_an_emitters_own_message_wins_and_is_cleaned(app: web.Application) -> None:
    emitter = ProgressEmitter.for_app(app)
    event = await emitter.send_progress("m-1", "extracting", message="Reading\x1b[31m page 3")
    assert event is not None and event["message"] == "Reading[31m page 3"
    generated = await emitter.send_progress(
        "m-2", "duplicate_check", context={"filename": "expenses.csv"}
    )
    assert generated is not None
    assert generated["message"] == "Checking if I've seen expenses.csv before..."


async def test_arguments_are_validated(app: web.Application) -> None:
    emitter = ProgressEmitter.for_app(app)
    with pytest.raises(InvalidRequest, match="job_id"):
        await emitter.send_progress("no spaces allowed", "extracting")
    with pytest.raises(InvalidRequest, match="code"):
        await emitter.fail("f-1", "bad", code="Not A Code")


@pytest.mark.parametrize("ends", [True, False])
async def test_an_error_without_a_status_is_never_held(app: web.Application, ends: bool) -> None:
    """An error alone ends the job (its status becomes ``error``), so it goes at once, like a
    status; the control, a plain progress update of the same step, is held by the window."""
    emitter = ProgressEmitter.for_app(app)  # the default window, 0.1 s, far longer than a call
    await emitter.send_progress("held-1", "extracting", 10)
    update: dict[str, object] = {"step": "extracting", "progress": 20}
    if ends:
        update["error"] = {"message": "The file is empty."}
    event = await emitter.emit_request("held-1", update)
    if ends:
        assert event is not None and event["status"] == "error"
    else:
        assert event is None  # held for the window's end
    await emitter.aclose()


async def test_a_worker_process_reaches_clients_of_a_server_process(redis_url: str) -> None:
    with server_process({"TIDINGS_REDIS_URL": redis_url}) as node:
        watcher = await Watcher(node.url).connect()
        await watcher.subscribe("from-afar")
        worker = textwrap.dedent(f"""
            import asyncio
            from tidings import ProgressEmitter

            async def main():
                async with ProgressEmitter.from_url({redis_url!r}) as emitter:
                    for progress in (10, 50, 90):
                        await emitter.send_progress("from-afar", "extracting", progress)
                    await emitter.complete("from-afar", result={{"ok": True}})

            asyncio.run(main())
        """)
        process = await asyncio.create_subprocess_exec(sys.executable, "-c", worker, cwd=ROOT)
        assert await asyncio.wait_for(process.wait(), 60) == 0
        # 50 fell within the coalescing window of 10 and was replaced by 90, sent before the end
        await eventually(lambda: watcher.seqs("from-afar") == [1, 2, 3], what="three events")
        assert [event["progress"] for event in watcher.received] == [10, 90, 100]
        assert watcher.received[-1]["result"] == {"ok": True}
        await watcher.close()


async def test_the_documents_names_work_unchanged() -> None:
    """``send_websocket_progress(manager, job_id, step, progress, context=...)`` as the seed
    documents call it, beside ``generate_friendly_status``, both from the package."""
    from tidings import generate_friendly_status, send_websocket_progress

    async with running_app(Settings()) as (_, app):
        manager = ProgressEmitter.for_app(app)
        event = await send_websocket_progress(
            manager, "seed-1", "duplicate_check", 15, context={"filename": "expenses.csv"}
        )
        await manager.aclose()
    assert event is not None and event["progress"] == 15
    assert event["message"] == generate_friendly_status(
        "duplicate_check", {"filename": "expenses.csv"}
    )
    assert event["message"] == "Checking if I've seen expenses.csv before..."
