"""The seed documents' two progress streams: their shapes, over the one way of following a job."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
from tidings import ProgressEmitter, Settings

from tests.support import running_app

Message = tuple[str | None, dict[str, Any]]


async def next_message(response: aiohttp.ClientResponse) -> Message | None:
    """The next (event name, data), or None when the server ended the stream."""
    name: str | None = None
    async with asyncio.timeout(20):
        while line := (await response.content.readline()).decode():
            if line.startswith("event: "):
                name = line[len("event: ") :].strip()
            elif line.startswith("data: "):
                return name, json.loads(line[len("data: ") :])
    return None


async def follow(response: aiohttp.ClientResponse, then: Any) -> list[Message]:
    """The first message (the state when the stream opened), then ``then`` runs, then every
    message until the server ends the stream."""
    first = await next_message(response)
    assert first is not None
    received = [first]
    driving = asyncio.create_task(then)
    while (message := await next_message(response)) is not None:
        received.append(message)
    await driving
    return received


async def drive(emitter: ProgressEmitter, job_id: str, *, fail: bool = False) -> None:
    await emitter.send_progress(job_id, "parsing", 40, context={"filename": "a.csv"})
    if fail:
        await emitter.fail(job_id, "The file is not a CSV.")
    else:
        await emitter.complete(job_id, result={"rows": 3})


async def test_upload_progress_is_current_then_updated_for_onmessage() -> None:
    async with running_app(Settings()) as (url, app), aiohttp.ClientSession() as http:
        emitter = ProgressEmitter.for_app(app)
        await emitter.send_progress("up-1", "queued", 0, extra={"filename": "a.csv"})
        await emitter.flush()
        async with http.get(f"{url}/api/upload/progress/up-1") as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            received = await follow(response, drive(emitter, "up-1"))
        await emitter.aclose()
    assert all(name is None for name, _ in received)  # unnamed: an onmessage handler sees all
    kinds = [data["event"] for _, data in received]
    assert kinds[0] == "current" and set(kinds[1:]) == {"updated"}
    jobs = [data["job"] for _, data in received]
    assert {(job["id"], job["type"], job["filename"]) for job in jobs} == {("up-1", "job", "a.csv")}
    assert "created_at" in jobs[0]  # the current state is a Snapshot; an update is an Event
    assert [job["status"] for job in jobs][-1] == "done" and jobs[-1]["progress"] == 100
    assert [job["seq"] for job in jobs] == list(range(jobs[0]["seq"], jobs[0]["seq"] + len(jobs)))


async def test_files_progress_names_its_events_progress() -> None:
    async with running_app(Settings()) as (url, app), aiohttp.ClientSession() as http:
        emitter = ProgressEmitter.for_app(app)
        outcomes = {}
        for job_id, fail in (("f-ok", False), ("f-bad", True)):
            extra = {"filename": "a.csv", "size_bytes": 1000}
            await emitter.send_progress(job_id, "queued", 0, extra=extra)
            await emitter.flush()
            async with http.get(f"{url}/api/files/progress/{job_id}") as response:
                outcomes[job_id] = await follow(response, drive(emitter, job_id, fail=fail))
        await emitter.aclose()
    ok = outcomes["f-ok"]
    assert {name for name, _ in ok} == {"progress"}
    first, last = ok[0][1], ok[-1][1]
    assert (first["upload_id"], first["filename"], first["status"]) == (
        "f-ok",
        "a.csv",
        "uploading",
    )
    assert first["total_bytes"] == 1000 and "started_at" in first
    assert (last["status"], last["progress_percentage"], last["uploaded_bytes"]) == (
        "completed",
        100,
        1000,
    )
    assert "completed_at" in last
    failed = outcomes["f-bad"][-1][1]
    assert failed["status"] == "failed" and failed["error"]  # the control: not "completed"


async def test_a_missing_job_is_the_same_404_as_the_protocols_stream() -> None:
    async with running_app(Settings()) as (url, _), aiohttp.ClientSession() as http:
        for path in ("/api/upload/progress/nope", "/api/files/progress/nope"):
            async with http.get(f"{url}{path}") as response:
                assert response.status == 404
                assert (await response.json())["error"]["code"] == "not_found"
