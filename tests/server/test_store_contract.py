"""One contract, two stores: every test here runs against the embedded store and real Redis."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import random
import signal
import statistics
from collections.abc import AsyncIterator, Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from tidings.constants import MAX_RECENT_JOBS, RECENT_JOBS_KEY, job_keys
from tidings.errors import (
    Conflict,
    JobCancelled,
    JobTerminal,
    NotFound,
    PayloadTooLarge,
    StoreUnavailable,
)
from tidings.service import new_epoch, now
from tidings.store import JobStore, Limits, MemoryStore, RedisStore, Update, connect, redis_store
from tidings.store.base import Applied, dump

from tests.support import RedisServer

#: The limits of the stores these tests run on (also on a Redis Cluster, tests/cluster).
CONTRACT_LIMITS = Limits(history=50, max_extra_bytes=1024, max_steps=5)


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[JobStore]:
    if request.param == "memory":
        yield MemoryStore(CONTRACT_LIMITS)
        return
    url = request.getfixturevalue("redis_url")
    redis_store = RedisStore(connect(url), CONTRACT_LIMITS)
    yield redis_store
    await redis_store.aclose()


async def apply(store: JobStore, job_id: str = "job-1", **fields: object) -> Applied | None:
    iso, ms = now()
    return await store.apply(
        Update(job_id=job_id, **fields),
        epoch=new_epoch(),  # type: ignore[arg-type]
        now_iso=iso,
        now_ms=ms,
    )


async def test_first_update_creates_the_job_with_seq_one(store: JobStore) -> None:
    applied = await apply(
        store, step="duplicate_check", message="Checking...", progress=15, owner="user-1"
    )
    assert applied is not None
    event = applied.event
    assert applied.owner == "user-1"
    assert (event["seq"], event["status"], event["step"], event["progress"]) == (
        1,
        "processing",
        "duplicate_check",
        15,
    )
    assert event["timestamp"].endswith("Z") and len(event["timestamp"]) == 24
    job = (await store.read("job-1")).job
    assert job is not None
    assert (job["seq"], job["epoch"], job["owner"]) == (1, event["epoch"], "user-1")
    assert [s["status"] for s in job["steps"]] == ["in_progress"]


async def test_create_mode_queues_and_refuses_an_existing_job(store: JobStore) -> None:
    applied = await apply(store, mode="create", step="queued", message="Waiting", status="queued")
    assert applied is not None and applied.event["status"] == "queued"
    with pytest.raises(Conflict):
        await apply(store, mode="create", step="queued", message="Waiting", status="queued")


async def test_update_mode_refuses_a_missing_job(store: JobStore) -> None:
    with pytest.raises(NotFound):
        await apply(store, mode="update", status="cancelled")
    assert (await store.read("job-1")).job is None


async def test_seq_is_contiguous_and_unchanged_updates_get_none(store: JobStore) -> None:
    seqs = []
    for progress in (10, 20, 20, 30):
        applied = await apply(store, step="extracting", message="Reading", progress=progress)
        seqs.append(applied.event["seq"] if applied else None)
    assert seqs == [1, 2, None, 3]


async def test_progress_never_goes_backwards_but_step_and_message_apply(store: JobStore) -> None:
    await apply(store, step="extracting", message="Reading", progress=50)
    applied = await apply(store, step="storing", message="Saving", progress=20)
    assert applied is not None
    assert (applied.event["progress"], applied.event["step"], applied.event["message"]) == (
        50,
        "storing",
        "Saving",
    )


async def test_terminal_jobs_refuse_updates(store: JobStore) -> None:
    await apply(store, step="extracting", message="Reading", progress=50)
    done = await apply(store, step="complete", message="Done!", status="done", result='{"rows":3}')
    assert done is not None
    assert (done.event["status"], done.event["progress"], done.event["result"]) == (
        "done",
        100,
        {"rows": 3},
    )
    with pytest.raises(JobTerminal) as caught:
        await apply(store, step="extracting", progress=60)
    assert not isinstance(caught.value, JobCancelled)
    job = (await store.read("job-1")).job
    assert job is not None and job["seq"] == 2 and job["status"] == "done"


async def test_cancelled_jobs_raise_job_cancelled(store: JobStore) -> None:
    await apply(store, step="extracting", message="Reading")
    cancelled = await apply(
        store,
        mode="update",
        status="cancelled",
        message="Cancelled",
        error={"code": "cancelled", "message": "Cancelled at your request."},
    )
    assert cancelled is not None and cancelled.event["status"] == "cancelled"
    job = (await store.read("job-1")).job
    assert job is not None and job["cancel_requested"] is True
    with pytest.raises(JobCancelled):
        await apply(store, step="storing")


async def test_extra_merges_key_by_key_and_null_removes(store: JobStore) -> None:
    await apply(store, step="s", message="m", extra_set={"a": dump(1), "b": dump([])})
    applied = await apply(store, extra_set={"c": dump({"x": []})}, extra_del=("a",))
    assert applied is not None
    assert applied.event["extra"] == {"b": [], "c": {"x": []}}
    job = (await store.read("job-1")).job
    assert job is not None and job["extra"] == {"b": [], "c": {"x": []}}
    assert await apply(store, extra_set={"b": dump([])}, extra_del=("missing",)) is None


async def test_merged_extra_over_the_limit_is_refused_and_nothing_written(store: JobStore) -> None:
    await apply(store, step="s", message="m", extra_set={"a": dump("x" * 600)})
    with pytest.raises(PayloadTooLarge):
        await apply(store, step="t", message="n", extra_set={"b": dump("y" * 600)})
    job = (await store.read("job-1")).job
    assert job is not None
    assert (job["seq"], job["step"], list(job["extra"])) == (1, "s", ["a"])


async def test_timeline_completes_steps_and_marks_the_failing_one(store: JobStore) -> None:
    await apply(store, step="initializing_streaming", message="Getting ready", progress=5)
    await apply(store, step="duplicate_check", message="Checking", progress=15)
    await apply(store, step="duplicate_check", message="Still checking", progress=20)
    await apply(
        store,
        status="error",
        message="Oops",
        error={"code": "failed", "message": "Row 12 is short"},
    )
    job = (await store.read("job-1")).job
    assert job is not None
    assert [(s["step"], s["status"], s["progress"]) for s in job["steps"]] == [
        ("initializing_streaming", "complete", 5),
        ("duplicate_check", "error", 20),
    ]
    assert job["steps"][1]["message"] == "Oops"
    assert job["error"] == {"code": "failed", "message": "Row 12 is short"}
    assert job["step"] == "duplicate_check"


async def test_timeline_is_bounded(store: JobStore) -> None:
    for index in range(8):
        await apply(store, step=f"step_{index}", message=f"Step {index}")
    job = (await store.read("job-1")).job
    assert job is not None
    assert [s["step"] for s in job["steps"]] == [f"step_{i}" for i in range(3, 8)]


async def test_catchup_returns_missed_events_in_order(store: JobStore) -> None:
    for progress in range(1, 11):
        await apply(store, step="s", message="m", progress=progress)
    job = (await store.read("job-1")).job
    assert job is not None
    catchup = await store.read("job-1", job["epoch"], 4)
    assert catchup.recovered and [e["seq"] for e in catchup.events] == list(range(5, 11))
    assert [e["progress"] for e in catchup.events] == list(range(5, 11))
    current = await store.read("job-1", job["epoch"], 10)
    assert current.recovered and current.events == []


@pytest.mark.parametrize(("epoch", "since"), [("other", 3), (None, 11), (None, 99)])
async def test_catchup_refuses_unknown_epoch_or_future_seq(
    store: JobStore, epoch: str | None, since: int
) -> None:
    for progress in range(1, 11):
        await apply(store, step="s", message="m", progress=progress)
    job = (await store.read("job-1")).job
    assert job is not None
    catchup = await store.read("job-1", epoch or job["epoch"], since)
    assert (catchup.recovered, catchup.events, catchup.job) == (False, [], job)


async def test_catchup_beyond_the_history_is_not_recovered(store: JobStore) -> None:
    for progress in range(1, 101):
        await apply(store, step="s", message="m", progress=progress)
    job = (await store.read("job-1")).job
    assert job is not None
    assert not (await store.read("job-1", job["epoch"], 0)).recovered
    recent = await store.read("job-1", job["epoch"], 95)
    assert recent.recovered and [e["seq"] for e in recent.events] == [96, 97, 98, 99, 100]


async def test_eta_appears_once_a_rate_is_known_and_is_never_negative(store: JobStore) -> None:
    iso, ms = now()
    first = await store.apply(
        Update("job-1", step="s", message="m", progress=10), epoch="e", now_iso=iso, now_ms=ms
    )
    second = await store.apply(
        Update("job-1", progress=20), epoch="e", now_iso=iso, now_ms=ms + 1000
    )
    done = await store.apply(
        Update("job-1", status="done", message="Done"), epoch="e", now_iso=iso, now_ms=ms + 2000
    )
    assert first and second and done
    assert first.event["eta_seconds"] is None
    assert second.event["eta_seconds"] == 8.0  # 80 points left at 10 points a second
    assert done.event["eta_seconds"] is None


async def test_eta_on_a_steady_job_is_the_remaining_time(store: JobStore) -> None:
    """2.5 points every 50 ms is 50 points a second: the ETA is what is left over 50, exactly,
    once a rate is known. The clock is made up, so the figure is exact and no test waits."""
    etas = []
    for step in range(1, 41):
        applied = await store.apply(
            Update("job-1", step="s", progress=step * 2.5),
            epoch="e",
            now_iso="2026-01-01T00:00:00.000Z",
            now_ms=1_000_000 + step * 50,
        )
        assert applied is not None
        etas.append(applied.event["eta_seconds"])
    assert etas[0] is None
    left = [Decimal(100) - Decimal("2.5") * step for step in range(2, 41)]
    assert etas[1:] == [
        float((points / 50).quantize(Decimal("0.1"), ROUND_HALF_UP)) for points in left
    ]


async def test_eta_on_an_uneven_pace_stays_within_a_fifth_of_the_remaining_time(
    store: JobStore,
) -> None:
    """The moving average on a worker whose steps take 30 to 70 ms (a seeded, made-up clock)."""
    pace = random.Random(7)
    at = [1_000_000]
    for _ in range(40):
        at.append(at[-1] + pace.randint(30, 70))
    etas = []
    for step in range(1, 41):
        applied = await store.apply(
            Update("job-1", step="s", progress=step * 2.5),
            epoch="e",
            now_iso="2026-01-01T00:00:00.000Z",
            now_ms=at[step],
        )
        assert applied is not None
        etas.append(applied.event["eta_seconds"])
    finished = at[40]
    errors = [
        abs(eta - (finished - at[step]) / 1000) / ((finished - at[step]) / 1000)
        for step, eta in zip(range(11, 31), etas[10:30], strict=True)
        if eta is not None
    ]
    assert len(errors) == 20
    assert statistics.median(errors) < 0.2


@pytest.mark.parametrize(
    "kind",
    [
        "memory",
        "redis",
    ],
)
async def test_a_progress_step_too_small_for_an_eta_leaves_the_eta_unset(
    kind: str, request: pytest.FixtureRequest
) -> None:
    """1e-310 points in a second is valid progress, and a rate no finite ETA can be made of."""
    store: JobStore = (
        MemoryStore()
        if kind == "memory"
        else RedisStore(connect(request.getfixturevalue("redis_url")))
    )
    iso, ms = now()
    etas = []
    try:
        for elapsed, progress in ((0, 0.0), (1000, 1e-310), (2000, 50.0)):
            applied = await store.apply(
                Update("job-1", step="s", progress=progress),
                epoch="e",
                now_iso=iso,
                now_ms=ms + elapsed,
            )
            assert applied is not None
            etas.append(applied.event["eta_seconds"])
        catchup = await store.read("job-1", "e", 0)
        assert catchup.recovered and [e["seq"] for e in catchup.events] == [1, 2, 3]
    finally:
        await store.aclose()
    # 50 points a second, averaged with the slow rate before it: 15 a second, 50 points left.
    assert etas == [None, None, 3.3]


async def test_list_jobs_is_the_owners_newest_first(store: JobStore) -> None:
    iso, ms = now()
    for index, owner in enumerate(["u1", "u2", "u1", "u1"]):
        await store.apply(
            Update(f"job-{index}", step="s", message="m", owner=owner),
            epoch="e",
            now_iso=iso,
            now_ms=ms + index,
        )
    assert [job["job_id"] for job in await store.list_jobs("u1")] == ["job-3", "job-2", "job-0"]
    assert await store.list_jobs("nobody") == []


async def test_recent_jobs_are_the_servers_newest_whoever_owns_them(store: JobStore) -> None:
    iso, ms = now()
    owners = [None, "u1", None, "u2"] * 13  # 52 jobs: two more than the list holds
    for index, owner in enumerate(owners):
        await store.apply(
            Update(f"job-{index}", step="s", message="m", owner=owner),
            epoch="e",
            now_iso=iso,
            now_ms=ms + index,
        )
    await apply(store, "job-0", step="later", message="m")  # an update is no creation
    recent = await store.recent_jobs()
    assert [job["job_id"] for job in recent] == [f"job-{i}" for i in range(51, 1, -1)]
    assert {job["owner"] for job in recent} == {None, "u1", "u2"}
    assert [job["job_id"] for job in await store.recent_jobs(3)] == ["job-51", "job-50", "job-49"]
    assert [job["job_id"] for job in await store.list_jobs("u1")][:2] == ["job-49", "job-45"]


async def test_the_recent_set_in_redis_holds_only_the_newest(redis_url: str) -> None:
    """Bounded where it is kept, not only where it is read."""
    store = RedisStore(connect(redis_url))
    for index in range(MAX_RECENT_JOBS + 2):
        await apply(store, f"job-{index}", step="s", message="m")
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    assert await client.zcard(RECENT_JOBS_KEY) == MAX_RECENT_JOBS
    assert await client.zscore(RECENT_JOBS_KEY, "job-1") is None
    assert await client.zscore(RECENT_JOBS_KEY, "job-2") is not None
    await client.aclose()
    await store.aclose()


async def test_recent_jobs_leave_out_expired_jobs_and_forget_them(redis_url: str) -> None:
    """Redis expires a job's keys but not its entry in the recent set: the read drops it."""
    store = RedisStore(connect(redis_url))
    await apply(store, "old", step="s", message="m")
    await apply(store, "new", step="s", message="m")
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    assert await client.zscore(RECENT_JOBS_KEY, "old") is not None  # control: it is listed
    await client.delete(*job_keys("old"))  # as its TTL would
    assert [job["job_id"] for job in await store.recent_jobs()] == ["new"]
    assert await client.zscore(RECENT_JOBS_KEY, "old") is None
    assert await client.zscore(RECENT_JOBS_KEY, "new") is not None
    await client.aclose()
    await store.aclose()


class FakeClock:
    """Seconds that pass only when the test says so."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def test_memory_store_expires_finished_jobs_after_the_done_ttl() -> None:
    clock = FakeClock()
    store = MemoryStore(Limits(active_ttl=100, done_ttl=10), clock=clock)
    await apply(store, step="s", message="m")
    clock.now += 99  # an active job outlives the done TTL...
    await apply(store, status="done", message="Done")
    clock.now += 9  # ...and a finished one lives the done TTL from its end, and no longer
    assert (await store.read("job-1")).job is not None
    assert [job["job_id"] for job in await store.recent_jobs()] == ["job-1"]
    clock.now += 1
    assert (await store.read("job-1")).job is None
    assert await store.list_jobs("nobody") == []
    assert await store.recent_jobs() == []


async def test_memory_store_sweep_drops_only_the_expired() -> None:
    clock = FakeClock()
    store = MemoryStore(Limits(active_ttl=100, done_ttl=10), clock=clock)
    await apply(store, "running", step="s", message="m")
    await apply(store, "finished", step="s", message="m")
    await apply(store, "finished", status="done", message="Done")
    clock.now += 10
    assert store.sweep() == 1
    assert (await store.read("running")).job is not None
    assert (await store.read("finished")).job is None


async def test_redis_keys_carry_ttls_and_one_hash_tag(redis_url: str) -> None:
    store = RedisStore(connect(redis_url), Limits(active_ttl=500, done_ttl=100))
    await apply(store, step="s", message="m", extra_set={"a": "1"})
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    keys = sorted(await client.keys("tidings:*"))
    own_keys = [key for key in keys if key != RECENT_JOBS_KEY and ":user:" not in key]
    assert own_keys and all("{job-1}" in key for key in own_keys)
    assert all(400 < ttl <= 500 for ttl in [await client.ttl(key) for key in keys])
    await apply(store, status="done", message="Done")
    assert all(0 < ttl <= 100 for ttl in [await client.ttl(key) for key in own_keys])
    await client.aclose()
    await store.aclose()


@pytest.fixture
async def own_redis(tmp_path: Path) -> AsyncIterator[tuple[RedisServer, RedisStore]]:
    """A Redis of the test's own, which it may freeze, and a store on it."""
    server = RedisServer(tmp_path)
    server.start()
    store = RedisStore(connect(server.url))
    yield server, store
    await store.aclose()
    server.stop()


@contextlib.contextmanager
def frozen(server: RedisServer) -> Iterator[None]:
    """Redis stopped (SIGSTOP) inside the block: it reads and answers nothing until it ends."""
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.process.pid, signal.SIGCONT)


async def test_a_frozen_redis_is_an_error_after_the_batch_timeout_then_the_store_recovers(
    own_redis: tuple[RedisServer, RedisStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Redis that stops answering (SIGSTOP) turns a merge into StoreUnavailable once its batch
    has waited ``BATCH_TIMEOUT``, not into a hang; once Redis answers again, so does the store
    (its connection, closed by the timeout, is made anew)."""
    monkeypatch.setattr(redis_store, "BATCH_TIMEOUT", 0.5)
    server, store = own_redis
    assert await apply(store, "frozen", step="s", progress=1) is not None  # control
    with frozen(server), pytest.raises(StoreUnavailable):
        await apply(store, "frozen", step="s", progress=2)
    assert await apply(store, "frozen", step="s", progress=3) is not None


async def test_updates_made_at_once_each_get_their_own_outcome_in_order(store: JobStore) -> None:
    """Updates made together (on Redis: one batch, one call of the merge script) are merged one
    after the other in the order they were made; each caller gets its own outcome, a refusal
    included, and the others are not harmed by it."""
    await apply(store, "ended", step="s", message="m")
    await apply(store, "ended", status="done", message="Done")
    outcomes = await asyncio.gather(
        apply(store, "a", step="s", progress=1),
        apply(store, "b", step="s", progress=1),
        apply(store, "a", step="s", progress=2),
        apply(store, "ended", step="s", progress=3),  # refused: the job has ended
        apply(store, "a", step="s", progress=3),
        apply(store, "a", step="s", progress=3),  # changes nothing
        apply(store, "missing", mode="update", step="s"),  # refused: no such job
        apply(store, "b", step="t", progress=2),
        return_exceptions=True,
    )
    kinds = [type(outcome).__name__ for outcome in outcomes]
    assert kinds[:5] == ["Applied", "Applied", "Applied", "JobTerminal", "Applied"]
    assert kinds[5:] == ["NoneType", "NotFound", "Applied"]
    seqs = [(o.event["job_id"], o.event["seq"]) for o in outcomes if isinstance(o, Applied)]
    assert seqs == [("a", 1), ("b", 1), ("a", 2), ("a", 3), ("b", 2)]
    job = (await store.read("a")).job
    assert job is not None and (job["seq"], job["progress"]) == (3, 3)


async def test_a_batch_goes_to_redis_as_one_call_and_survives_a_lost_script(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While one update is on its way, the next ones wait and go together as one EVALSHA; when
    Redis has lost the script by then (a restart; here SCRIPT FLUSH just before the batch goes),
    the store loads it and sends the batch again, whole."""
    store = RedisStore(connect(redis_url))
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    sent = store._evalsha
    batches: list[int] = []

    async def lose_the_script_before_the_first_batch(calls: list[Any]) -> list[Any]:
        if len(calls) > 1 and 49 not in batches:
            await client.script_flush()
        batches.append(len(calls))
        return await sent(calls)

    try:
        await apply(store, "warm", step="s")  # the script is loaded
        monkeypatch.setattr(store, "_evalsha", lose_the_script_before_the_first_batch)
        await client.config_resetstat()
        applied = await asyncio.gather(
            *(apply(store, f"job-{index % 5}", step="s", progress=index) for index in range(50))
        )
        assert all(isinstance(one, Applied) for one in applied)
        # the first alone; the rest together, refused (NOSCRIPT), then sent again
        assert batches == [1, 49, 49]
        assert (await client.info("commandstats"))["cmdstat_evalsha"]["calls"] == 3
        for index in range(5):
            job = (await store.read(f"job-{index}")).job
            assert job is not None and (job["seq"], job["progress"]) == (10, 45 + index)
    finally:
        await client.aclose()
        await store.aclose()


async def launch_in_turns(
    store: RedisStore, turns: int, per_turn: int, first: int = 0
) -> list[asyncio.Task[Any]]:
    """``per_turn`` updates in each of ``turns`` turns of the event loop (one batch each), over
    five jobs; update ``i`` reports progress ``first + i``."""
    tasks = []
    for turn in range(turns):
        for index in range(turn * per_turn, (turn + 1) * per_turn):
            tasks.append(
                asyncio.create_task(apply(store, f"job-{index % 5}", progress=first + index))
            )
        await asyncio.sleep(0)
    return tasks


async def test_batches_on_their_way_together_keep_their_order_and_their_replies(
    own_redis: tuple[RedisServer, RedisStore],
) -> None:
    """Batches made while others are on their way go at once, on the same connection (Redis is
    stopped here, so that they are all on their way together); each update gets its own reply,
    and each job's updates are merged in the order they were made."""
    server, store = own_redis
    client = aioredis.Redis.from_url(server.url, decode_responses=True)
    try:
        await apply(store, "warm", step="s")
        await client.config_resetstat()
        with frozen(server):
            tasks = await launch_in_turns(store, turns=4, per_turn=10)
            await asyncio.sleep(0.2)
        applied = await asyncio.gather(*tasks)
        assert [one.event["progress"] for one in applied if one] == list(range(40))
        assert [one.event["seq"] for one in applied if one] == [
            index // 5 + 1 for index in range(40)
        ]
        # the first alone, then a batch for each turn: all written before Redis answered one
        assert (await client.info("commandstats"))["cmdstat_evalsha"]["calls"] == 5
    finally:
        await client.aclose()


async def test_batches_on_their_way_when_one_fails_fail_too_and_the_next_go_on(
    own_redis: tuple[RedisServer, RedisStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch that times out takes the batches written after it on its connection with it (each
    raises; none reads another's replies), and the batches after that go on a new connection."""
    monkeypatch.setattr(redis_store, "BATCH_TIMEOUT", 0.5)
    server, store = own_redis
    await apply(store, "warm", step="s")
    with frozen(server):
        tasks = await launch_in_turns(store, turns=3, per_turn=10)
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(outcome, StoreUnavailable) for outcome in outcomes)
    # (the failed batches may have been merged once Redis ran again: progress goes on)
    after = await asyncio.gather(*await launch_in_turns(store, 3, 10, first=30))
    for index, one in enumerate(after):
        assert one is not None and one.event["job_id"] == f"job-{index % 5}"
        assert one.event["progress"] == 30 + index


async def test_the_callers_of_a_batch_are_woken_a_few_per_turn_of_the_loop(redis_url: str) -> None:
    """So that the first of them make their next updates, and these go to Redis, while the rest
    are still to be woken (``WAKE_AT_ONCE``): counted in turns of the event loop."""
    store = RedisStore(connect(redis_url))
    turns = 0
    woken: list[int] = []

    async def count_turns() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    async def update(index: int) -> None:
        await apply(store, f"job-{index}", step="t")
        woken.append(turns)

    counter = asyncio.create_task(count_turns())
    try:
        for index in range(41):  # made first: a job's first update also lists it (another call)
            await apply(store, f"job-{index}", step="s")
        # the first alone, the other 40 as one batch, woken 8 per turn: 5 turns
        await asyncio.gather(*(update(index) for index in range(41)))
    finally:
        counter.cancel()
        await store.aclose()
    per_turn = collections.Counter(woken[1:])
    assert sorted(per_turn.values()) == [redis_store.WAKE_AT_ONCE] * 5, per_turn


async def test_redis_flush_starts_a_new_epoch(redis_url: str) -> None:
    store = RedisStore(connect(redis_url))
    first = await apply(store, step="s", message="m", progress=10)
    client = aioredis.Redis.from_url(redis_url)
    await client.flushdb()
    await client.aclose()
    second = await apply(store, step="s", message="m", progress=20)
    assert first and second
    assert second.event["seq"] == 1 and second.event["epoch"] != first.event["epoch"]
    catchup = await store.read("job-1", first.event["epoch"], 1)
    assert not catchup.recovered and catchup.job is not None
    await store.aclose()
