"""Reporting from workers: coalescing, the blocking emitter, track, ETA, an unreachable store."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from aiohttp import web
from tidings import ProgressEmitter, Settings, StoreUnavailable, SyncProgressEmitter
from tidings.messages import MessageWriter
from tidings.models import ProgressRequest, parse
from tidings.service import JobService
from tidings.store import RedisStore, Update, connect
from tidings.store.base import Applied
from tidings.store.redis_store import Client

from tests.support import free_port, running_app


@pytest.fixture
async def app() -> AsyncIterator[web.Application]:
    async with running_app(Settings()) as (_, application):
        yield application


async def history(emitter: ProgressEmitter, job_id: str) -> list[dict[str, object]]:
    job = await emitter.service.snapshot(job_id)
    catchup = await emitter.service.read(job_id, job["epoch"], 0)
    assert catchup.recovered
    return list(catchup.events)  # type: ignore[arg-type]


async def history_of(
    emitter: ProgressEmitter, job_id: str, length: int, within: float = 10
) -> list[dict[str, object]]:
    """The job's events once there are ``length`` of them (a bound on waiting, not a timing)."""
    deadline = asyncio.get_running_loop().time() + within
    while len(events := await history(emitter, job_id)) < length:
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"{job_id} has {len(events)} events, not {length}")
        await asyncio.sleep(0.02)
    return events


async def test_a_burst_of_progress_collapses_and_the_last_value_arrives(
    app: web.Application,
) -> None:
    emitter = ProgressEmitter.for_app(app)
    for index in range(10_000):
        await emitter.send_progress("burst", "extracting", index / 100)
    moved = await emitter.send_progress("burst", "storing", 100)
    assert moved is not None and moved["step"] == "storing"  # a new step is never held
    await emitter.complete("burst")
    events = await history(emitter, "burst")
    assert len(events) < 50
    assert [e["step"] for e in events[-3:]] == ["extracting", "storing", "complete"]
    assert events[-3]["progress"] == 99.99
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


async def test_control_without_a_window_every_call_is_an_event() -> None:
    async with running_app(Settings(coalesce_window=0)) as (_, app):
        emitter = ProgressEmitter.for_app(app)
        for index in range(1_000):
            await emitter.send_progress("every", "extracting", index / 10)
        assert len(await history(emitter, "every")) == 1_000


async def test_held_progress_is_sent_when_the_window_ends(app: web.Application) -> None:
    emitter = ProgressEmitter.for_app(app)
    first = await emitter.send_progress("quiet", "extracting", 10)
    held = await emitter.send_progress("quiet", "extracting", 20, extra={"a": 1})
    held_too = await emitter.send_progress("quiet", "extracting", 30, extra={"b": 2})
    assert first is not None and held is None and held_too is None
    events = await history_of(emitter, "quiet", length=2)  # once the window has ended
    assert [(e["progress"], e["extra"]) for e in events] == [(10, {}), (30, {"a": 1, "b": 2})]


async def test_a_paced_worker_gets_an_eta_from_its_second_update() -> None:
    """The emitter carries the store's ETA (its accuracy is pinned on a made-up clock in
    test_store_contract.py, where time is exact); here a worker paces itself as a real one does,
    so that each update is a later millisecond than the one before."""
    async with running_app(Settings(coalesce_window=0)) as (_, app):
        emitter = ProgressEmitter.for_app(app)
        etas = []
        for step in range(1, 11):
            event = await emitter.send_progress("steady", "extracting", step * 2.5)
            assert event is not None
            etas.append(event["eta_seconds"])
            await asyncio.sleep(0.01)  # the pace of the worker: the point, not a wait
        assert etas[0] is None  # no rate yet
        assert all(eta is not None and eta >= 0 for eta in etas[1:])


def test_the_blocking_emitter_is_safe_from_many_threads(redis_url: str) -> None:
    failures: list[BaseException] = []
    with SyncProgressEmitter(redis_url, Settings(redis_url=redis_url)) as emitter:

        def work(index: int) -> None:
            try:
                with emitter.job(f"thread-{index}") as job:
                    for step in ("reading", "extracting", "storing"):
                        for percent in range(0, 30, 3):
                            job.progress(
                                step,
                                percent + {"reading": 0, "extracting": 30, "storing": 60}[step],
                            )
                    emitter.send_progress("shared", f"from_{index}", extra={str(index): index})
            except BaseException as exc:  # pragma: no cover - reported below
                failures.append(exc)

        threads = [threading.Thread(target=work, args=(index,)) for index in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert failures == []
        reader = ProgressEmitter.from_url(redis_url)

        async def check() -> None:
            for index in range(6):
                job = await reader.service.snapshot(f"thread-{index}")
                assert (job["status"], job["progress"]) == ("done", 100)
                assert [s["step"] for s in job["steps"]] == [
                    "queued",
                    "reading",
                    "extracting",
                    "storing",
                    "complete",
                ]
            shared = await reader.service.snapshot("shared")
            assert shared["extra"] == {str(index): index for index in range(6)}
            assert shared["seq"] == 6
            await reader.aclose()

        asyncio.run(check())


def test_track_reports_a_generator_with_and_without_a_total(redis_url: str) -> None:
    def rows() -> Iterator[int]:
        yield from range(50)

    with SyncProgressEmitter(redis_url, Settings(coalesce_window=0)) as emitter:
        with emitter.job("counted") as job:
            assert sum(job.track(rows(), step="extracting", total=50, start=10, end=90)) == 1225
        with emitter.job("uncounted") as job:
            assert list(job.track(rows(), step="extracting")) == list(range(50))
            job.complete()
        reader = ProgressEmitter.from_url(redis_url)

        async def check() -> None:
            counted = await history(reader, "counted")
            progress = [e["progress"] for e in counted if e["step"] == "extracting"]
            assert progress[0] == 10 and progress[-1] == 90 and progress == sorted(progress)
            assert len(progress) == 51
            uncounted = await history(reader, "uncounted")
            extracting = [e for e in uncounted if e["step"] == "extracting"]
            assert {e["progress"] for e in extracting} == {None}
            assert extracting[-1]["extra"] == {"processed": 50}
            await reader.aclose()

        asyncio.run(check())


async def test_async_track_over_a_list_reaches_the_end(app: web.Application) -> None:
    emitter = ProgressEmitter.for_app(app)
    async with emitter.job("async-track") as job:
        seen = [item async for item in job.track(["a", "b", "c"], step="extracting")]
    assert seen == ["a", "b", "c"]
    events = await history(emitter, "async-track")
    assert [e["progress"] for e in events if e["step"] == "extracting"][-1] == 100


async def test_an_unreachable_store_raises_a_clear_error_after_bounded_retries() -> None:
    emitter = ProgressEmitter.from_url(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(StoreUnavailable, match=r"did not answer after \d+ tries"):
        await emitter.send_progress("lost", "extracting", 10)
    await emitter.aclose()


def test_the_blocking_emitter_refuses_bad_input_in_the_callers_thread(redis_url: str) -> None:
    from tidings import InvalidRequest

    with SyncProgressEmitter(redis_url) as emitter:
        with pytest.raises(InvalidRequest, match="progress"):
            emitter.send_progress("j", "extracting", 150)
        with pytest.raises(InvalidRequest, match="job_id"):
            emitter.send_progress("bad id", "extracting", 10)


class _FirstTryLost(RedisStore):
    """The Redis store whose first merge of a job never reaches Redis (the connection dropped
    before the command went out); ``on_retry`` runs once that update, tried again, is stored."""

    def __init__(self, client: Client, on_retry: Callable[[], object] = lambda: None) -> None:
        super().__init__(client)
        self.tried: set[str] = set()
        self.on_retry = on_retry

    async def apply(self, update: Update, **kwargs: Any) -> Applied | None:
        if update.job_id not in self.tried:
            self.tried.add(update.job_id)
            raise StoreUnavailable("the connection dropped")
        applied = await super().apply(update, **kwargs)
        if update.step == "extracting":
            self.on_retry()
        return applied


def _steps(events: list[dict[str, object]]) -> list[object]:
    return [event["step"] for event in events]


async def test_a_jobs_next_update_waits_for_the_one_being_retried(redis_url: str) -> None:
    """The first update of the job fails and waits to be tried again; the job's next update,
    decided meanwhile, goes after it, not past it."""
    store = _FirstTryLost(connect(redis_url))
    emitter = ProgressEmitter(JobService(store, None, MessageWriter()), coalesce_window=0)
    first = asyncio.create_task(emitter.send_progress("in-turn", "extracting", 10))
    await asyncio.sleep(0)  # the first try has failed: the retry waits for its backoff
    assert "in-turn" in store.tried and not first.done()
    second = await emitter.send_progress("in-turn", "storing", 20)
    assert first.done() and second is not None and second["seq"] == 2
    assert _steps(await history(emitter, "in-turn")) == ["extracting", "storing"]

    # Control arm: the same two updates and the same lost first try, with nothing holding the
    # second back until the first is retried: the second overtakes it.
    service = emitter.service
    with pytest.raises(StoreUnavailable):
        await service.report("bare", parse(ProgressRequest, {"step": "extracting"}))
    await service.report("bare", parse(ProgressRequest, {"step": "storing"}))
    await service.report("bare", parse(ProgressRequest, {"step": "extracting"}))
    assert _steps(await history(emitter, "bare")) == ["storing", "extracting"]
    await emitter.aclose()
    await store.aclose()


@pytest.mark.parametrize("when", ["waiting", "handed the turn"])
async def test_a_cancelled_send_hands_the_jobs_turn_on(redis_url: str, when: str) -> None:
    """A send cancelled while it waits for its job's turn is never sent, and the send behind it
    still gets the turn, also when the cancel comes just as the turn reached it."""
    loop = asyncio.get_running_loop()
    cancelled: list[asyncio.Task[object]] = []
    store = _FirstTryLost(
        connect(redis_url),
        # Runs as the retried update is stored, before it passes the job's turn on; the cancel
        # comes after that: the waiting send is handed the turn, then cancelled before it runs.
        on_retry=lambda: when == "handed the turn" and loop.call_soon(cancelled[0].cancel),
    )
    emitter = ProgressEmitter(JobService(store, None, MessageWriter()), coalesce_window=0)
    first = asyncio.create_task(emitter.send_progress("handed", "extracting", 10))
    await asyncio.sleep(0)  # the first try has failed: the retry waits for its backoff
    doomed = asyncio.create_task(emitter.send_progress("handed", "reading", 20))
    cancelled.append(doomed)
    await asyncio.sleep(0)  # it waits for the job's turn
    if when == "waiting":
        doomed.cancel()
    last = await asyncio.wait_for(emitter.send_progress("handed", "storing", 30), 30)
    assert last is not None and first.done() and doomed.cancelled()
    assert _steps(await history(emitter, "handed")) == ["extracting", "storing"]
    assert "handed" not in emitter._turns  # free once nobody sends
    await emitter.aclose()
    await store.aclose()
