"""Server-Sent Events over real sockets: snapshot, live events, resume, resync, end and cleanup."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from tidings import ProgressEmitter, Settings
from tidings.constants import job_room, user_room
from tidings.realtime.fanout import plain
from tidings.web.keys import AUTHORITY, FANOUT, SERVICE, SIO, STREAMS

from tests.support import eventually, http_json, running_app, server_process

SECRET = "sse-test-secret-0123456789abcdefghij"
Node = tuple[str, web.Application]


def settings(**overrides: Any) -> Settings:
    """A node's settings; every update is its own event (no coalescing), as the tests count."""
    return Settings(coalesce_window=0, **overrides)


@dataclass
class Frame:
    event: str
    id: str | None
    data: Any


class Sse:
    """An SSE response read line by line, as EventSource parses it."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response
        self.comments: list[str] = []

    async def frame(self, within: float = 10.0) -> Frame:
        fields: dict[str, str] = {}
        async with asyncio.timeout(within):
            while True:
                line = await self.response.content.readline()
                if not line:
                    raise EOFError("the stream ended")
                text = line.decode().rstrip("\r\n")
                if not text:
                    if fields:
                        return Frame(
                            fields.get("event", "message"),
                            fields.get("id"),
                            json.loads(fields["data"]),
                        )
                    continue
                if text.startswith(":"):
                    self.comments.append(text)
                    continue
                name, _, value = text.partition(":")
                fields[name] = value.removeprefix(" ")

    async def frames(self, count: int) -> list[Frame]:
        return [await self.frame() for _ in range(count)]

    async def until(self, event: str, job_id: str) -> list[Frame]:
        """Every frame up to and including ``event`` of ``job_id``."""
        frames = [await self.frame()]
        while not (frames[-1].event == event and frames[-1].data["job_id"] == job_id):
            frames.append(await self.frame())
        return frames

    async def ended(self, within: float = 10.0) -> bool:
        """True once the server ended the stream cleanly; a frame instead is a failure."""
        try:
            frame = await self.frame(within)
        except EOFError:
            return True
        raise AssertionError(f"expected the end of the stream, got {frame}")


@contextlib.asynccontextmanager
async def open_stream(
    url: str, headers: dict[str, str] | None = None, expect: int = 200
) -> AsyncIterator[Sse]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers=headers) as response,
    ):
        assert response.status == expect, await response.text()
        yield Sse(response)


def listeners(app: web.Application) -> dict[str, Any]:
    return dict(app[FANOUT]._listeners)


@pytest.fixture
async def node(store_url: str | None) -> AsyncIterator[Node]:
    async with running_app(settings(redis_url=store_url)) as running:
        yield running


async def create(url: str, job_id: str, owner: str | None = None) -> dict[str, Any]:
    status, body = await http_json("POST", f"{url}/api/jobs", {"job_id": job_id, "owner": owner})
    assert status == 201, body
    return dict(body["job"])


async def test_a_stream_sends_the_snapshot_then_each_event_and_ends_after_the_last(
    node: Node,
) -> None:
    url, app = node
    await create(url, "upload-1")
    emitter = ProgressEmitter.for_app(app)
    async with open_stream(f"{url}/api/jobs/upload-1/stream") as sse:
        headers = sse.response.headers
        assert headers["Content-Type"].startswith("text/event-stream")
        assert headers["Cache-Control"] == "no-cache"
        assert headers["X-Accel-Buffering"] == "no"
        snapshot = await sse.frame()
        assert snapshot.event == "snapshot" and snapshot.data["status"] == "queued"
        epoch = snapshot.data["epoch"]
        assert snapshot.id == f"{epoch}:1"
        for progress in (5, 15, 40):
            await emitter.send_progress(
                "upload-1", "duplicate_check", progress, context={"filename": "a.csv"}
            )
        await emitter.complete("upload-1", result={"rows": 120})
        frames = await sse.frames(4)
        assert [(f.event, f.id) for f in frames] == [
            ("job_update", f"{epoch}:2"),
            ("job_update", f"{epoch}:3"),
            ("job_update", f"{epoch}:4"),
            ("job_complete", f"{epoch}:5"),
        ]
        assert frames[0].data["message"] == "Checking if I've seen a.csv before..."
        assert frames[-1].data["result"] == {"rows": 120}
        assert await sse.ended()
    await eventually(lambda: not listeners(app), what="the listener to go")


@pytest.mark.parametrize("ending", ["fail", "cancel"])
async def test_job_error_ends_the_stream_too(node: Node, ending: str) -> None:
    url, app = node
    emitter = ProgressEmitter.for_app(app)
    await emitter.send_progress("doomed", "extracting", 10)
    async with open_stream(f"{url}/api/jobs/doomed/stream") as sse:
        assert (await sse.frame()).event == "snapshot"
        if ending == "fail":
            await emitter.fail("doomed", "Row 12 has 3 columns, expected 5")
        else:
            status, _ = await http_json("POST", f"{url}/api/jobs/doomed/cancel")
            assert status == 200
        last = await sse.frame()
        assert last.event == "job_error"
        assert last.data["status"] == ("error" if ending == "fail" else "cancelled")
        assert await sse.ended()


async def test_a_finished_job_streams_its_snapshot_and_ends(node: Node) -> None:
    url, app = node
    emitter = ProgressEmitter.for_app(app)
    await emitter.send_progress("over", "extracting", 10)
    await emitter.complete("over")
    async with open_stream(f"{url}/api/jobs/over/stream") as sse:
        snapshot = await sse.frame()
        assert snapshot.event == "snapshot" and snapshot.data["status"] == "done"
        assert await sse.ended()
    # Reconnecting from the end (as EventSource would) gets 204: the signal to stop for good.
    headers = {"Last-Event-ID": snapshot.id or ""}
    async with open_stream(f"{url}/api/jobs/over/stream", headers, expect=204) as sse:
        assert await sse.response.read() == b""


@pytest.mark.parametrize("via", ["header", "query"])
async def test_resume_from_last_event_id_sends_exactly_the_missed_events(
    node: Node, via: str
) -> None:
    url, app = node
    emitter = ProgressEmitter.for_app(app)
    await emitter.send_progress("resume", "extracting", 1)
    async with open_stream(f"{url}/api/jobs/resume/stream") as sse:
        await sse.frame()  # snapshot, seq 1
        for progress in range(2, 5):
            await emitter.send_progress("resume", "extracting", progress)
        seen = await sse.frames(3)
    last_id = seen[-1].id
    assert last_id is not None and last_id.endswith(":4")
    await eventually(lambda: not listeners(app), what="the first stream to go")
    for progress in range(5, 10):  # missed while away
        await emitter.send_progress("resume", "extracting", progress)

    target = f"{url}/api/jobs/resume/stream"
    headers = {}
    if via == "header":
        headers["Last-Event-ID"] = last_id
    else:
        target += f"?last_event_id={last_id}"
    async with open_stream(target, headers) as sse:
        missed = await sse.frames(5)
        assert [f.event for f in missed] == ["job_update"] * 5
        assert [f.data["seq"] for f in missed] == [5, 6, 7, 8, 9]
        assert [f.data["progress"] for f in missed] == [5, 6, 7, 8, 9]
        await emitter.send_progress("resume", "extracting", 10)
        await emitter.complete("resume")
        live = await sse.frames(2)
        assert [f.data["seq"] for f in live] == [10, 11]
        assert await sse.ended()


async def test_a_client_that_is_up_to_date_gets_only_live_events(node: Node) -> None:
    url, app = node
    emitter = ProgressEmitter.for_app(app)
    event = await emitter.send_progress("current", "extracting", 1)
    assert event is not None
    headers = {"Last-Event-ID": f"{event['epoch']}:{event['seq']}"}
    async with open_stream(f"{url}/api/jobs/current/stream", headers) as sse:
        assert job_room("current") in listeners(app)  # joined before the headers went out
        await emitter.send_progress("current", "extracting", 2)
        frame = await sse.frame()
        assert (frame.event, frame.data["seq"]) == ("job_update", 2)


@pytest.mark.parametrize("why", ["history_trimmed", "unknown_epoch"])
async def test_resync_with_a_snapshot_when_the_gap_is_gone(store_url: str | None, why: str) -> None:
    async with running_app(settings(redis_url=store_url, history_limit=10)) as (url, app):
        emitter = ProgressEmitter.for_app(app)
        first = await emitter.send_progress("trim", "extracting", 0.1)
        assert first is not None
        # Redis trims its stream approximately (whole nodes of 100): go well past that.
        for seq in range(2, 251):
            await emitter.send_progress("trim", "extracting", seq * 0.1)
        epoch = first["epoch"] if why == "history_trimmed" else "another-epoch"
        headers = {"Last-Event-ID": f"{epoch}:1"}
        async with open_stream(f"{url}/api/jobs/trim/stream", headers) as sse:
            resync = await sse.frame()
            assert resync.event == "resync"
            assert resync.data["seq"] == 250 and resync.data["progress"] == 25
            assert resync.id == f"{first['epoch']}:250"
            await emitter.send_progress("trim", "extracting", 26)
            assert (await sse.frame()).data["seq"] == 251
        # The control arm: a gap the history still holds is filled, not resynced.
        headers = {"Last-Event-ID": f"{first['epoch']}:245"}
        async with open_stream(f"{url}/api/jobs/trim/stream", headers) as sse:
            frames = await sse.frames(6)
            assert [(f.event, f.data["seq"]) for f in frames] == [
                ("job_update", seq) for seq in range(246, 252)
            ]


class DroppedOnTheWay:
    """Updates are still stored but these never reach the node's rooms, as when a publish or
    the node's subscription loses them (the embedded store delivers through ``emit``, a Redis
    channel through ``deliver``)."""

    def __init__(self, app: web.Application) -> None:
        self.drop = False
        self.dropped: set[tuple[str, int]] = set()  # (job_id, seq) of every event dropped
        manager = app[FANOUT]
        for name in ("emit", "deliver"):
            setattr(manager, name, self._dropping(getattr(manager, name)))

    def _dropping(self, deliver: Any) -> Any:
        async def maybe(event: str, data: Any, *args: Any, **kwargs: Any) -> Any:
            if not self.drop:
                return await deliver(event, data, *args, **kwargs)
            event_data = plain(data)  # a Redis channel's event arrives as its text
            self.dropped.add((event_data["job_id"], event_data["seq"]))
            return None

        return maybe

    async def stop_after(self, job_id: str, seq: int) -> None:
        """Stop dropping once this event has reached the node (a publish reaches it after the
        worker's call has returned, so the last update sent is not yet dropped then)."""
        await eventually(lambda: (job_id, seq) in self.dropped, what=f"{job_id} {seq} dropped")
        self.drop = False


async def test_a_gap_in_the_live_feed_is_filled_from_the_history(node: Node) -> None:
    url, app = node
    emitter = ProgressEmitter.for_app(app)
    await emitter.send_progress("holes", "extracting", 1)
    dropping = DroppedOnTheWay(app)
    async with open_stream(f"{url}/api/jobs/holes/stream") as sse:
        assert (await sse.frame()).data["seq"] == 1
        dropping.drop = True
        for progress in (2, 3, 4):  # stored, never delivered live
            await emitter.send_progress("holes", "extracting", progress)
        await dropping.stop_after("holes", 4)
        await emitter.send_progress("holes", "extracting", 5)
        frames = await sse.frames(4)
        assert [f.data["seq"] for f in frames] == [2, 3, 4, 5]
        assert [f.data["progress"] for f in frames] == [2, 3, 4, 5]


async def test_each_event_of_a_job_batch_frame_is_sent_once(node: Node) -> None:
    url, app = node
    service = app[SERVICE]
    emitter = ProgressEmitter.for_app(app)
    first = await emitter.send_progress("batch", "extracting", 1)
    assert first is not None
    dropping = DroppedOnTheWay(app)
    room = [job_room("batch")]
    async with open_stream(f"{url}/api/jobs/batch/stream") as sse:
        assert (await sse.frame()).data["seq"] == 1
        dropping.drop = True
        for progress in (2, 3, 4):  # stored, and delivered only as the batch below
            await emitter.send_progress("batch", "extracting", progress)
        await dropping.stop_after("batch", 4)
        events = (await service.read("batch", first["epoch"], 1)).events
        await app[SIO].emit("job_batch", {"events": events}, room=room, namespace="/")
        frames = await sse.frames(3)
        assert [(f.event, f.data["seq"]) for f in frames] == [("job_update", s) for s in (2, 3, 4)]
        await app[SIO].emit("job_batch", {"events": events}, room=room, namespace="/")
        await emitter.complete("batch")
        last = await sse.frame()
        assert (last.event, last.data["seq"]) == ("job_complete", 5)  # the repeats were dropped
        assert await sse.ended()


async def test_an_overflowing_listener_catches_up_from_the_store(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("tidings.realtime.fanout.LISTENER_QUEUE", 3)
    async with running_app(settings()) as (url, app):
        emitter = ProgressEmitter.for_app(app)
        await emitter.send_progress("flood", "extracting", 0)
        async with open_stream(f"{url}/api/jobs/flood/stream") as sse:
            assert (await sse.frame()).data["seq"] == 1
            (listener,) = listeners(app)[job_room("flood")]
            # The embedded store never yields, so this burst outruns the stream's reading.
            for step in range(1, 41):
                await emitter.send_progress("flood", "extracting", step)
            assert listener.overflowed  # the control: events really were dropped
            frames = await sse.frames(40)
            assert [f.data["seq"] for f in frames] == list(range(2, 42))


async def test_keepalive_comments_while_nothing_happens(store_url: str | None) -> None:
    assert Settings().sse_keepalive == 15  # the protocol's 15 s
    async with running_app(settings(redis_url=store_url, sse_keepalive=0.2)) as (url, app):
        await ProgressEmitter.for_app(app).send_progress("quiet", "extracting", 1)
        async with open_stream(f"{url}/api/jobs/quiet/stream") as sse:
            await sse.frame()
            async with asyncio.timeout(10):
                while len(sse.comments) < 2:
                    line = await sse.response.content.readline()
                    if line.startswith(b":"):
                        sse.comments.append(line.decode().strip())
            assert sse.comments == [": keepalive", ": keepalive"]


async def test_a_client_that_leaves_takes_its_listener_with_it(node: Node) -> None:
    url, app = node
    await create(url, "left")
    async with open_stream(f"{url}/api/jobs/left/stream") as sse:
        await sse.frame()
        assert job_room("left") in listeners(app)  # the control: present while connected
        assert app[STREAMS].open["job"] == 1
    await eventually(lambda: not listeners(app), what="the listener to go")
    assert app[STREAMS].open["job"] == 0
    # The node still delivers to the rest.
    async with open_stream(f"{url}/api/jobs/left/stream") as sse:
        await sse.frame()
        await ProgressEmitter.for_app(app).send_progress("left", "extracting", 5)
        assert (await sse.frame()).data["seq"] == 2


async def test_stopping_the_server_ends_open_streams_cleanly(store_url: str | None) -> None:
    async with running_app(settings(redis_url=store_url)) as (url, _):
        await create(url, "stopping")
        session = aiohttp.ClientSession()
        response = await session.get(f"{url}/api/jobs/stopping/stream")
        sse = Sse(response)
        await sse.frame()
    try:
        assert await sse.ended()  # a clean end of the chunked body, not a cut connection
    finally:
        response.release()
        await session.close()


async def test_the_user_stream_carries_every_job_of_the_user_and_none_of_others(
    node: Node,
) -> None:
    url, app = node
    emitter = ProgressEmitter.for_app(app)
    await emitter.send_progress("a-1", "extracting", 10, owner="alice")
    await emitter.send_progress("a-2", "extracting", 20, owner="alice")
    await emitter.send_progress("a-done", "extracting", 5, owner="alice")
    await emitter.complete("a-done")
    await emitter.send_progress("b-1", "extracting", 10, owner="bob")
    async with open_stream(f"{url}/api/stream?user_id=alice") as sse:
        snapshots = await sse.frames(2)
        assert [(f.event, f.data["job_id"]) for f in snapshots] == [
            ("snapshot", "a-2"),
            ("snapshot", "a-1"),
        ]
        a1 = snapshots[1].data
        assert snapshots[1].id == f"a-1:{a1['epoch']}:{a1['seq']}"
        await emitter.send_progress("b-1", "storing", 50)
        await emitter.complete("a-1")
        await emitter.send_progress("b-1", "storing", 60)
        await emitter.send_progress("a-2", "storing", 30)
        await emitter.send_progress("a-new", "extracting", 1, owner="alice")
        frames = await sse.until("job_update", "a-new")
        assert [(f.event, f.data["job_id"], f.data["seq"]) for f in frames] == [
            ("job_complete", "a-1", 2),
            ("job_update", "a-2", 2),
            ("job_update", "a-new", 1),
        ]
        assert all(f.id == f"{f.data['job_id']}:{f.data['epoch']}:{f.data['seq']}" for f in frames)
        # A finished job does not end the user stream.
        await emitter.send_progress("a-2", "storing", 40)
        assert (await sse.frame()).data["seq"] == 3

    # A reconnect starts over with the snapshots of the unfinished jobs, whatever it resumes from.
    headers = {"Last-Event-ID": frames[-1].id or ""}
    async with open_stream(f"{url}/api/stream?user_id=alice", headers) as sse:
        again = await sse.frames(2)
        assert [(f.event, f.data["job_id"]) for f in again] == [
            ("snapshot", "a-new"),
            ("snapshot", "a-2"),
        ]
    await eventually(lambda: user_room("alice") not in listeners(app), what="cleanup")


async def test_the_user_stream_fills_gaps_per_job(node: Node) -> None:
    url, app = node
    emitter = ProgressEmitter.for_app(app)
    await emitter.send_progress("g-1", "extracting", 1, owner="carol")
    dropping = DroppedOnTheWay(app)
    async with open_stream(f"{url}/api/stream?user_id=carol") as sse:
        assert (await sse.frame()).event == "snapshot"
        dropping.drop = True
        await emitter.send_progress("g-1", "extracting", 2)
        await emitter.send_progress("g-2", "extracting", 1, owner="carol")  # a new job, lost
        await emitter.send_progress("g-2", "extracting", 2)
        await dropping.stop_after("g-2", 2)
        await emitter.send_progress("g-1", "extracting", 3)
        await emitter.send_progress("g-2", "extracting", 3)
        frames = await sse.frames(3)
        assert [(f.event, f.data["job_id"], f.data["seq"]) for f in frames] == [
            ("job_update", "g-1", 2),
            ("job_update", "g-1", 3),
            ("snapshot", "g-2", 3),  # a job the client never saw starts with its snapshot
        ]


async def test_streams_refuse_bad_input_before_streaming(node: Node) -> None:
    url, _ = node
    await create(url, "fine")
    cases = [
        ("/api/jobs/nope/stream", {}, 404, "not_found"),
        ("/api/jobs/bad%20id/stream", {}, 400, "invalid_request"),
        ("/api/jobs/fine/stream", {"Last-Event-ID": "garbage"}, 400, "invalid_request"),
        ("/api/jobs/fine/stream", {"Last-Event-ID": "e:-1"}, 400, "invalid_request"),
        ("/api/jobs/fine/stream", {"Last-Event-ID": "e:" + "9" * 5000}, 400, "invalid_request"),
        ("/api/jobs/fine/stream?last_event_id=e:%C2%B2", {}, 400, "invalid_request"),
        ("/api/jobs/fine/stream?last_event_id=bad%20epoch:3", {}, 400, "invalid_request"),
        ("/api/stream", {}, 400, "invalid_request"),  # open mode names the user
        ("/api/stream?user_id=no%20spaces", {}, 401, "unauthorized"),
    ]
    async with aiohttp.ClientSession() as session:
        for path, headers, status, code in cases:
            async with session.get(url + path, headers=headers) as response:
                body = await response.json()
                assert (response.status, body["error"]["code"]) == (status, code), path
        async with session.head(f"{url}/api/jobs/fine/stream") as response:
            assert response.status == 405


async def test_secret_mode_takes_the_token_in_the_query_and_hides_other_users_jobs(
    store_url: str | None,
) -> None:
    config = settings(redis_url=store_url, secret=SECRET, api_key="worker-key")
    async with running_app(config) as (url, app):
        emitter = ProgressEmitter.for_app(app)
        await emitter.send_progress("dana-1", "extracting", 10, owner="dana")
        await emitter.send_progress("erin-1", "extracting", 10, owner="erin")
        dana = app[AUTHORITY].mint("dana", ttl=60)
        scoped = app[AUTHORITY].mint("guest", ["erin-1"], ttl=60)

        async with open_stream(f"{url}/api/jobs/dana-1/stream?token={dana}") as sse:
            assert (await sse.frame()).data["job_id"] == "dana-1"
        async with open_stream(f"{url}/api/jobs/erin-1/stream?token={scoped}") as sse:
            assert (await sse.frame()).data["job_id"] == "erin-1"
        headers = {"Authorization": f"Bearer {dana}"}
        async with open_stream(f"{url}/api/jobs/dana-1/stream", headers) as sse:
            assert (await sse.frame()).data["job_id"] == "dana-1"

        async with aiohttp.ClientSession() as session:
            refused = {
                "no token": f"{url}/api/jobs/dana-1/stream",
                "forged": f"{url}/api/jobs/dana-1/stream?token=not-a-jwt",
                "user stream, no token": f"{url}/api/stream",
            }
            for what, target in refused.items():
                async with session.get(target) as response:
                    assert response.status == 401, what
                    assert (await response.json())["error"]["code"] == "unauthorized"
            bodies = []
            for job_id in ("erin-1", "nobody-has-this"):
                target = f"{url}/api/jobs/{job_id}/stream?token={dana}"
                async with session.get(target) as response:
                    assert response.status == 404
                    bodies.append((await response.json())["error"])
            assert bodies == [
                {"code": "not_found", "message": "There is no job erin-1."},
                {"code": "not_found", "message": "There is no job nobody-has-this."},
            ]

        async with open_stream(f"{url}/api/stream?token={dana}") as sse:
            assert (await sse.frame()).data["job_id"] == "dana-1"
            await emitter.send_progress("erin-1", "storing", 50)
            await emitter.send_progress("dana-1", "storing", 50)
            frame = await sse.frame()
            assert (frame.data["job_id"], frame.data["seq"]) == ("dana-1", 2)


async def test_a_stream_ends_when_its_token_expires(store_url: str | None) -> None:
    config = settings(redis_url=store_url, secret=SECRET)
    async with running_app(config) as (url, app):
        await ProgressEmitter.for_app(app).send_progress("brief", "extracting", 1, owner="fay")
        short = app[AUTHORITY].mint("fay", ttl=2)
        async with open_stream(f"{url}/api/jobs/brief/stream?token={short}") as sse:
            snapshot = await sse.frame()
            assert snapshot.data["status"] == "processing"  # not over: only the expiry ends it
            assert await sse.ended()


async def test_curl_shows_a_stream_working() -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed (.ci/run installs it)")
    env = {"TIDINGS_SSE_KEEPALIVE": "0.5", "TIDINGS_REDIS_URL": ""}
    with server_process(env) as node:
        status, _ = await http_json("POST", f"{node.url}/api/jobs", {"job_id": "curl-1"})
        assert status == 201
        process = await asyncio.create_subprocess_exec(
            curl, "-sN", f"{node.url}/api/jobs/curl-1/stream", stdout=asyncio.subprocess.PIPE
        )
        assert process.stdout is not None
        try:
            lines: list[str] = []

            async def read_until(prefix: str) -> None:
                async with asyncio.timeout(15):
                    while not (lines and lines[-1].startswith(prefix)):
                        lines.append((await process.stdout.readline()).decode().rstrip("\n"))

            await read_until("event: snapshot")
            await read_until(": keepalive")
            progress = {"step": "extracting", "progress": 50}
            status, _ = await http_json("POST", f"{node.url}/api/jobs/curl-1/progress", progress)
            assert status == 202
            await read_until("event: job_update")
            status, _ = await http_json(
                "POST", f"{node.url}/api/jobs/curl-1/progress", {"status": "done"}
            )
            await read_until("event: job_complete")
            assert await asyncio.wait_for(process.wait(), 15) == 0  # curl ends with the stream
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
