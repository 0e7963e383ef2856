"""Pre-encoded fan-out: one frame written to every ready socket, order kept for every socket.

The node's fast path writes a prebuilt websocket frame straight to a socket's transport; every
other socket, or the same socket while its writer is busy, takes engine.io's queue. Switching
paths mid-burst is where order could break: an event queued for a socket, then the next one
written directly before the socket's writer ran. These tests switch paths at seeded random
points and watch real websocket clients.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
import socketio
from tidings import ProgressEmitter, Settings
from tidings.realtime import fanout
from tidings.web.keys import FANOUT, SIO

from tests.support import Watcher, check_burst, eventually, running_app

EVENTS = 120
HIGH_WATER = fanout.HIGH_WATER


async def burst(app: Any, switching: random.Random, monkeypatch: pytest.MonkeyPatch) -> None:
    """Send the updates without yielding between them (the embedded store never yields), the
    high-water mark switched at random so that sockets change paths mid-burst."""
    emitter = ProgressEmitter.for_app(app)
    for progress in range(1, EVENTS):
        monkeypatch.setattr(fanout, "HIGH_WATER", switching.choice([-1, HIGH_WATER]))
        await emitter.send_progress("mixed", "extracting", progress * 100 / EVENTS)
    monkeypatch.setattr(fanout, "HIGH_WATER", HIGH_WATER)


@pytest.mark.parametrize("guarded", [True, False], ids=["ordered", "control"])
async def test_every_socket_gets_every_event_in_order_on_mixed_paths(
    guarded: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not guarded:
        # The fault: a socket with packets still queued counts as ready for a direct write.
        monkeypatch.setattr(fanout, "writer_idle", lambda socket: True)
    async with running_app(Settings(coalesce_window=0)) as (url, app):
        emitter = ProgressEmitter.for_app(app)
        await emitter.send_progress("mixed", "extracting", 0)
        watchers = [Watcher(url, catch_up=False) for _ in range(3)]
        for watcher in watchers:
            await watcher.connect()
            await watcher.subscribe("mixed")
        manager = app[FANOUT]
        before = (manager.direct, manager.queued)
        await burst(app, random.Random(7), monkeypatch)
        await check_burst(watchers, manager, before, EVENTS, guarded=guarded)


async def test_one_frame_serves_every_ready_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    """The frame is built once per event, however many sockets it is written to."""
    built: list[str] = []
    original = fanout.text_frame

    def counting(payload: str) -> bytes:
        built.append(payload)
        return original(payload)

    monkeypatch.setattr(fanout, "text_frame", counting)
    async with running_app(Settings(coalesce_window=0)) as (url, app):
        watchers = [await Watcher(url).connect() for _ in range(5)]
        for watcher in watchers:
            await watcher.subscribe("shared")
        emitter = ProgressEmitter.for_app(app)
        await emitter.send_progress("shared", "extracting", 10)
        for watcher in watchers:
            await eventually(lambda w=watcher: w.seqs("shared") == [1], what="the event")
        direct = app[FANOUT].direct
        for watcher in watchers:
            await watcher.close()
    assert direct == 5 and len(built) == 1


@pytest.mark.parametrize("dropped", [True, False], ids=["dropped", "control"])
async def test_each_sockets_wire_is_looked_up_once_and_dropped_when_it_leaves(
    dropped: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A websocket from its first request is written to directly; a socket upgraded from
    polling never is (its first request's transport is not the websocket's)."""
    if not dropped:  # the fault: the manager forgets to drop a socket's wire
        monkeypatch.setattr(
            fanout.FanoutManager, "basic_disconnect", socketio.AsyncManager.basic_disconnect
        )
    async with running_app(Settings(coalesce_window=0)) as (url, app):
        direct = [await Watcher(url).connect() for _ in range(2)]
        upgraded = await Watcher(url, transports=["polling", "websocket"]).connect()
        await eventually(lambda: upgraded.client.transport() == "websocket", what="the upgrade")
        for watcher in (*direct, upgraded):
            await watcher.subscribe("wired")
        emitter = ProgressEmitter.for_app(app)
        for count in (1, 2):
            await emitter.send_progress("wired", "extracting", count * 10)
            await eventually(
                lambda n=count: all(len(w.seqs("wired")) == n for w in (*direct, upgraded)),
                what="the event",
            )
        manager = app[FANOUT]
        wires = dict(manager._wires)
        counts = (manager.direct, manager.queued)
        for watcher in (*direct, upgraded):
            await watcher.close()
        await eventually(lambda: not app[FANOUT].rooms.get("/", {}).get(None), what="the leaving")
        left = dict(manager._wires)
    assert sorted(wire is None for wire in wires.values()) == [False, False, True]
    assert counts == (4, 2)
    assert left == ({} if dropped else wires)


class BatchCounter(Watcher):
    """A watcher that also counts the ``job_batch`` frames it received."""

    def __init__(self, url: str, *, catch_up: bool = True) -> None:
        super().__init__(url, catch_up=catch_up)
        self.batches: list[int] = []

    async def _on_batch(self, batch: dict[str, Any]) -> None:
        self.batches.append(len(batch["events"]))
        await super()._on_batch(batch)


async def test_a_socket_that_falls_behind_gets_its_events_in_one_job_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fanout, "HIGH_WATER", -1)  # every socket backed up: the queued path
    async with running_app(Settings(coalesce_window=0)) as (url, app):
        emitter = ProgressEmitter.for_app(app)
        await emitter.send_progress("behind", "extracting", 0)
        watcher = await BatchCounter(url).connect()
        await watcher.subscribe("behind")
        for progress in range(1, 21):  # one burst: the socket's writer cannot run meanwhile
            await emitter.send_progress("behind", "extracting", progress)
        await settled(watcher, "behind", 21)
        await watcher.close()
    assert watcher.batches == [20]  # the control: without batching, twenty frames
    assert watcher.seqs("behind") == list(range(2, 22)) and watcher.resubscribes == 0


async def test_past_the_bound_a_backlog_keeps_each_jobs_newest_and_the_client_catches_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fanout, "HIGH_WATER", -1)
    monkeypatch.setattr(fanout, "MAX_BACKLOG_EVENTS", 5)
    async with running_app(Settings(coalesce_window=0)) as (url, app):
        emitter = ProgressEmitter.for_app(app)
        for job in ("left", "right"):
            await emitter.send_progress(job, "extracting", 0)
        rule = await BatchCounter(url).connect()  # keeps the client rule: catches up
        raw = await BatchCounter(url, catch_up=False).connect()  # the control: applies as is
        for watcher in (rule, raw):
            for job in ("left", "right"):
                await watcher.subscribe(job)
        for progress in range(1, 21):
            for job in ("left", "right"):
                await emitter.send_progress(job, "extracting", progress)
        for job in ("left", "right"):
            await settled(rule, job, 21)
        await eventually(lambda: raw.batches, what="the control's batch")
        cut = app[FANOUT].cut
        await rule.close()
        await raw.close()
    assert cut == 2  # one backlog per socket, each cut once
    assert raw.batches == [2]  # all that was kept: each job's newest event
    assert [(event["job_id"], event["seq"]) for event in raw.received] == [
        ("left", 21),
        ("right", 21),
    ]
    assert rule.resubscribes == 2  # the gap in each job, filled from the history
    for job in ("left", "right"):
        assert rule.seqs(job) == list(range(2, 22))


async def settled(watcher: Watcher, job_id: str, seq: int) -> None:
    await eventually(lambda: watcher.seqs(job_id)[-1:] == [seq], what=f"{job_id} at {seq}")


@pytest.mark.parametrize("transports", [["websocket"], ["polling"]])
async def test_a_socket_is_reached_by_its_own_room_which_is_not_stored(
    transports: list[str],
) -> None:
    """python-socketio's room named after each sid is read from the namespace's room of every
    socket: an emit to a sid reaches that socket alone, and the room is among its rooms."""
    async with running_app(Settings()) as (url, app):
        alice = await Watcher(url, transports=transports).connect()
        bob = await Watcher(url, transports=transports).connect()
        manager = app[FANOUT]
        sid = alice.client.get_sid("/")
        assert sid not in manager.rooms["/"]
        assert manager.get_rooms(sid, "/")[0] == sid
        reached: list[str] = []
        for name, watcher in (("alice", alice), ("bob", bob)):
            watcher.client.on("hello", lambda data, name=name: reached.append(name))
        await app[SIO].emit("hello", {}, to=sid)
        await app[SIO].emit("hello", {}, to=[sid])
        await eventually(lambda: reached == ["alice", "alice"], what="alice's two hellos")
        await bob.close()
        await alice.close()
        await eventually(lambda: not manager.rooms.get("/", {}).get(None), what="the leaving")
