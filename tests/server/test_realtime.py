"""Socket.IO over real sockets: rooms, ordered delivery, catch-up, and bad input."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from tidings import JobCancelled, ProgressEmitter, Settings
from tidings.web.keys import AUTHORITY, SIO

from tests.support import Watcher, eventually, http_json, running_app


@pytest.fixture(params=["memory", "redis"])
async def node(request: pytest.FixtureRequest) -> AsyncIterator[tuple[str, web.Application]]:
    # Every update is sent: these tests follow each one (coalescing has its own tests).
    settings = Settings(redis_url=None, coalesce_window=0)
    if request.param == "redis":
        settings = Settings(redis_url=request.getfixturevalue("redis_url"), coalesce_window=0)
    async with running_app(settings) as running:
        yield running


@pytest.fixture
async def watcher(node: tuple[str, web.Application]) -> AsyncIterator[Watcher]:
    client = await Watcher(node[0]).connect()
    yield client
    await client.close()


def emitter_of(node: tuple[str, web.Application]) -> ProgressEmitter:
    return ProgressEmitter.for_app(node[1])


async def test_subscribe_before_the_job_exists_then_watch_it_to_completion(
    node: tuple[str, web.Application], watcher: Watcher
) -> None:
    ack = await watcher.subscribe("upload-1")
    assert ack == {"ok": True, "job": None, "events": [], "recovered": False}
    emitter = emitter_of(node)
    for progress in (5, 15, 40):
        await emitter.send_progress(
            "upload-1", "duplicate_check", progress, context={"filename": "expenses.csv"}
        )
    await emitter.complete("upload-1", result={"rows": 120})
    await eventually(lambda: watcher.seqs("upload-1") == [1, 2, 3, 4], what="all four events")
    last = watcher.received[-1]
    assert last["status"] == "done" and last["result"] == {"rows": 120}
    assert [e["progress"] for e in watcher.received] == [5, 15, 40, 100]


async def test_event_names_follow_the_status(
    node: tuple[str, web.Application], watcher: Watcher
) -> None:
    names: list[str] = []
    for name in ("job_update", "job_complete", "job_error"):
        watcher.client.on(name, lambda event, name=name: names.append(name))
    await watcher.subscribe("a")
    await watcher.subscribe("b")
    emitter = emitter_of(node)
    await emitter.send_progress("a", "extracting", 10)
    await emitter.complete("a")
    await emitter.send_progress("b", "extracting", 10)
    await emitter.fail("b", "Row 12 has 3 columns, expected 5")
    await eventually(lambda: len(names) == 4, what="four events")
    assert names == ["job_update", "job_complete", "job_update", "job_error"]


async def test_reconnect_with_epoch_and_since_gets_every_missed_event_once(
    node: tuple[str, web.Application],
) -> None:
    url, _ = node
    emitter = emitter_of(node)
    first = await Watcher(url).connect()
    await first.subscribe("job-r")
    for progress in range(1, 11):
        await emitter.send_progress("job-r", "extracting", progress)
    await eventually(lambda: len(first.seqs("job-r")) == 10, what="first ten")
    await first.close()
    for progress in range(11, 31):  # missed while away
        await emitter.send_progress("job-r", "extracting", progress)

    second = await Watcher(url).connect()
    second.last, second.applied = dict(first.last), list(first.applied)
    ack = await second.subscribe("job-r")
    assert ack["recovered"] is True and [e["seq"] for e in ack["events"]] == list(range(11, 31))
    for progress in range(31, 41):
        await emitter.send_progress("job-r", "extracting", progress)
    await eventually(lambda: len(second.seqs("job-r")) == 40, what="all forty")
    assert second.seqs("job-r") == list(range(1, 41))
    await second.close()


async def test_subscribe_joins_before_reading_so_no_event_falls_between(
    node: tuple[str, web.Application],
) -> None:
    """Subscribing while a worker emits never skips or doubles an event; the control arm, a
    snapshot read before joining the room, does skip, which shows the check can catch it."""
    url, _ = node
    emitter = emitter_of(node)
    rounds = 25
    gaps_in_protocol = 0
    gaps_in_control = 0
    for index in range(rounds):
        job_id = f"race-{index}"
        await emitter.send_progress(job_id, "extracting", 0)
        stop = asyncio.Event()

        async def emit_until_stopped(job_id: str = job_id, stop: asyncio.Event = stop) -> None:
            progress = 0.0
            while not stop.is_set():
                progress += 0.01
                await emitter.send_progress(job_id, "extracting", progress)
                await asyncio.sleep(0)

        worker = asyncio.create_task(emit_until_stopped())
        await asyncio.sleep(random.uniform(0, 0.01))
        watched = await Watcher(url, catch_up=False).connect()
        control = await Watcher(url, catch_up=False).connect()
        _, snapshot = await http_json("GET", f"{url}/api/jobs/{job_id}")
        await asyncio.sleep(random.uniform(0.001, 0.005))  # the worker moves on meanwhile
        await control.call("subscribe", {"job_id": job_id})
        control.last[job_id] = (snapshot["epoch"], snapshot["seq"])
        await watched.subscribe(job_id)
        await asyncio.sleep(random.uniform(0, 0.01))
        stop.set()
        await worker
        final = (await emitter.service.snapshot(job_id))["seq"]
        await eventually(lambda w=watched, j=job_id, f=final: w.last[j][1] == f, what="final")
        await eventually(
            lambda c=control, j=job_id, f=final: c.received and c.received[-1]["seq"] == f,
            what="control final",
        )
        start = watched.last[job_id][1] - len(watched.seqs(job_id))
        assert watched.seqs(job_id) == list(range(start + 1, final + 1))
        gaps_in_protocol += watched.resubscribes
        first_live = control.received[0]["seq"]
        gaps_in_control += first_live > snapshot["seq"] + 1
        await watched.close()
        await control.close()
    assert gaps_in_protocol == 0
    assert gaps_in_control > 0


async def test_a_socket_in_the_job_and_user_rooms_gets_each_event_once(
    node: tuple[str, web.Application],
) -> None:
    url, _ = node
    watcher = await Watcher(url, {"user_id": "user-1"}).connect()
    await watcher.subscribe("mine")
    emitter = emitter_of(node)
    await emitter.send_progress("mine", "extracting", 10, owner="user-1")
    await emitter.send_progress("mine", "storing", 20)
    await emitter.send_progress("other", "extracting", 10, owner="user-1")  # via the user room
    await eventually(lambda: len(watcher.received) >= 3, what="three events")
    await asyncio.sleep(0.2)
    assert [(e["job_id"], e["seq"]) for e in watcher.received] == [
        ("mine", 1),
        ("mine", 2),
        ("other", 1),
    ]
    await watcher.close()


async def test_cancel_ends_the_job_and_stops_the_worker(
    node: tuple[str, web.Application], watcher: Watcher
) -> None:
    emitter = emitter_of(node)
    await watcher.subscribe("long")
    await emitter.send_progress("long", "extracting", 10)
    ack = await watcher.call("cancel", {"job_id": "long"})
    assert ack["ok"] is True and ack["job"]["status"] == "cancelled"
    assert ack["job"]["cancel_requested"] is True
    await eventually(
        lambda: watcher.received and watcher.received[-1]["status"] == "cancelled",
        what="job_error for the cancel",
    )
    assert watcher.received[-1]["error"]["code"] == "cancelled"
    assert await emitter.is_cancel_requested("long")
    with pytest.raises(JobCancelled):
        await emitter.send_progress("long", "storing", 50)
    again = await watcher.call("cancel", {"job_id": "long"})
    assert again["ok"] is True and again["job"]["seq"] == ack["job"]["seq"]


async def test_list_jobs_is_the_callers_newest_first(node: tuple[str, web.Application]) -> None:
    url, _ = node
    emitter = emitter_of(node)
    for job_id, owner in [("j1", "u1"), ("j2", "u2"), ("j3", "u1")]:
        await emitter.send_progress(job_id, "extracting", owner=owner)
    mine = await Watcher(url, {"user_id": "u1"}).connect()
    ack = await mine.call("list_jobs", {})
    assert [job["job_id"] for job in ack["jobs"]] == ["j3", "j1"]
    anonymous = await Watcher(url).connect()
    assert (await anonymous.call("list_jobs", {}))["jobs"] == []
    await mine.close()
    await anonymous.close()


BAD_PAYLOADS = [
    ("subscribe", None),
    ("subscribe", "job-1"),
    ("subscribe", [1, 2]),
    ("subscribe", {}),
    ("subscribe", {"job_id": 7}),
    ("subscribe", {"job_id": "has space"}),
    ("subscribe", {"job_id": "../etc/passwd"}),
    ("subscribe", {"job_id": "x" * 129}),
    ("subscribe", {"job_id": "x" * 60_000}),
    ("subscribe", {"job_id": "ok", "unknown": 1}),
    ("subscribe", {"job_id": "ok", "since": 3}),
    ("subscribe", {"job_id": "ok", "epoch": "e", "since": -1}),
    ("subscribe", {"job_id": "ok", "epoch": "e", "since": "3"}),
    ("subscribe", {"job_id": "ok", "epoch": "e", "since": float("nan")}),
    ("subscribe", {"job_id": "ok", "epoch": {"a": 1}, "since": 1}),
    ("unsubscribe", {"job": "ok"}),
    ("cancel", {"job_id": None}),
    ("list_jobs", {"everything": True}),
    ("list_jobs", "please"),
    ("no_such_event", {"job_id": "ok"}),
]


@pytest.mark.parametrize(("event", "payload"), BAD_PAYLOADS)
async def test_malformed_payloads_get_invalid_request_and_the_socket_keeps_working(
    node: tuple[str, web.Application], watcher: Watcher, event: str, payload: object
) -> None:
    ack = await watcher.call(event, payload)
    assert ack["ok"] is False and ack["error"]["code"] == "invalid_request"
    assert isinstance(ack["error"]["message"], str) and "Traceback" not in ack["error"]["message"]
    assert (await watcher.call("subscribe", {"job_id": "still-fine"}))["ok"] is True
    assert watcher.client.connected


async def test_progress_arguments_are_validated_before_anything_is_written(
    node: tuple[str, web.Application],
) -> None:
    emitter = emitter_of(node)
    bad_calls = [
        dict(step="s", progress=float("nan")),
        dict(step="s", progress=101),
        dict(step="s", progress=-1),
        dict(step="not a step"),
        dict(step="s", extra={"blob": "x" * 20_000}),
        dict(step="s", context={"k": object()}),
    ]
    from tidings import InvalidRequest

    for call in bad_calls:
        with pytest.raises(InvalidRequest):
            await emitter.send_progress("v", **call)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest):
        await emitter.send_progress("bad id!", "s")
    assert (await emitter.service.read("v")).job is None


async def test_a_flood_is_rate_limited_without_harming_other_sockets() -> None:
    async with running_app(Settings(socket_rate=5, socket_burst=20)) as (url, _):
        noisy = await Watcher(url).connect()
        calm = await Watcher(url).connect()
        acks = await asyncio.gather(*(noisy.call("list_jobs", {}) for _ in range(100)))
        codes = {ack["error"]["code"] for ack in acks if not ack["ok"]}
        assert codes == {"rate_limited"}
        assert 20 <= sum(ack["ok"] for ack in acks) < 100
        assert (await calm.call("list_jobs", {}))["ok"] is True
        await noisy.close()
        await calm.close()


async def test_the_default_allowance_lets_a_page_resubscribe_a_thousand_jobs(
    node: tuple[str, web.Application], watcher: Watcher
) -> None:
    acks = await asyncio.gather(
        *(watcher.call("subscribe", {"job_id": f"file-{index}"}) for index in range(1000))
    )
    assert all(ack["ok"] for ack in acks)


async def test_a_sockets_events_are_handled_in_the_order_sent(
    node: tuple[str, web.Application], redis_url: str
) -> None:
    """subscribe then unsubscribe, sent without waiting: the socket ends outside every room.

    With a token the subscribe first reads the job's owner from the store, so a handler that
    ran events concurrently would let the unsubscribe leave the room before the subscribe
    joined it, and the socket would stay in the job's room, counted as watching it.
    """
    secret = "ordering-secret-0123456789-0123456789"
    async with running_app(Settings(secret=secret, redis_url=redis_url, coalesce_window=0)) as (
        url,
        app,
    ):
        emitter = ProgressEmitter.for_app(app)
        jobs = [f"order-{index}" for index in range(30)]  # alice's, so subscribe reads first
        for job_id in jobs:
            await emitter.send_progress(job_id, "extracting", 1, owner="alice")
        token = app[AUTHORITY].mint("alice", ttl=60)
        alice = await Watcher(url, {"token": token}).connect()
        acks: list[object] = []
        for job_id in jobs:
            await alice.client.emit("subscribe", {"job_id": job_id}, callback=acks.append)
            await alice.client.emit("unsubscribe", {"job_id": job_id}, callback=acks.append)
        await eventually(lambda: len(acks) == 2 * len(jobs), what="every ack")
        rooms = app[SIO].manager.get_rooms(alice.client.get_sid("/"), "/")
        assert [room for room in rooms if room.startswith("job:")] == []
        assert app[SIO].namespace_handlers["/"].subscriptions == 0
        await alice.close()


@pytest.mark.parametrize("compression", [False, True])
async def test_websocket_compression_is_off_unless_configured(compression: bool) -> None:
    async with (
        running_app(Settings(ws_compression=compression)) as (url, _),
        aiohttp.ClientSession() as session,
        session.ws_connect(
            f"{url}/socket.io/?EIO=4&transport=websocket",
            compress=15,
            timeout=aiohttp.ClientWSTimeout(ws_close=1),
        ) as ws,
    ):
        assert (ws.compress != 0) is compression
        await ws.send_str("1")  # engine.io close
