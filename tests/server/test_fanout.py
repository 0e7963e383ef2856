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
from tidings import ProgressEmitter, Settings
from tidings.realtime import fanout
from tidings.web.keys import FANOUT

from tests.support import Watcher, eventually, running_app

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
        for watcher in watchers:
            await eventually(lambda w=watcher: len(w.received) == EVENTS - 1, what="the burst")
        assert manager.direct > before[0] and manager.queued > before[1]  # both paths taken
        received = {id(w): [event["seq"] for event in w.received] for w in watchers}
        for watcher in watchers:
            await watcher.close()
    expected = list(range(2, EVENTS + 1))
    if guarded:
        assert all(received[id(w)] == expected for w in watchers)
    else:
        assert all(received[id(w)] != expected for w in watchers)  # the control: out of order
        assert all(sorted(received[id(w)]) == expected for w in watchers)  # but all there


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
