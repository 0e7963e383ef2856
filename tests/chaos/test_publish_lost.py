"""An update stored in Redis whose publish is lost: its watchers must still get it.

Found while writing the Redis restart test (the worker logged python-socketio's "Cannot publish
to redis... giving up"). A worker's update is two Redis commands: the Lua merge, then a PUBLISH
through python-socketio's Redis manager, which tries twice and then only logs. When both tries
fail the emitter still returns the Event (the update is acknowledged and stored) and
``JobService._publish`` assumes "subscribers fill the hole from there", which they do only when
a later event of the job reaches them. For the job's last event nothing later comes: a client
that is subscribed stays on ``processing`` forever, though the store says ``done``.

A relay between the emitter and Redis cuts every connection that sends PUBLISH while
``cutting`` is on; the node talks to Redis directly. The control arm is the same emitter through
the same relay with cutting off: those events arrive.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from tidings import ProgressEmitter, Settings

from tests.support import Watcher, eventually, http_json, server_process

JOB = "final-event"
PUBLISH = b"$7\r\nPUBLISH\r\n"  # the command's name as RESP sends it


class PublishCutter:
    """A TCP relay to Redis that closes any connection sending PUBLISH while ``cutting``."""

    def __init__(self, redis_port: int) -> None:
        self.redis_port = redis_port
        self.cutting = False
        self.cuts = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> PublishCutter:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return self

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"redis://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/0"

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        upstream_reader, upstream = await asyncio.open_connection("127.0.0.1", self.redis_port)
        try:
            await asyncio.gather(
                self._pipe(reader, upstream, check=True), self._pipe(upstream_reader, writer)
            )
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self._tasks.discard(task)
            for end in (writer, upstream):
                end.close()

    async def _pipe(
        self, source: asyncio.StreamReader, sink: asyncio.StreamWriter, check: bool = False
    ) -> None:
        while chunk := await source.read(65536):
            if check and self.cutting and PUBLISH in chunk.upper():
                self.cuts += 1
                raise ConnectionResetError("PUBLISH cut")
            sink.write(chunk)
            await sink.drain()
        sink.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@pytest.mark.xfail(
    strict=True,
    reason=(
        "an acknowledged update whose PUBLISH fails (python-socketio's AsyncRedisManager tries "
        "twice, then only logs 'giving up') is never delivered to subscribed clients unless a "
        "later event of the job follows; the job's final event is lost to them for good "
        "(server/service.py JobService._publish relies on 'subscribers fill the hole')"
    ),
)
async def test_a_final_update_whose_publish_is_lost_still_reaches_its_watchers(
    redis_url: str, tmp_path: Path
) -> None:
    redis_port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    relay = await PublishCutter(redis_port).start()
    emitter = ProgressEmitter.from_url(relay.url, Settings(coalesce_window=0))
    watcher: Watcher | None = None
    try:
        with server_process({"TIDINGS_REDIS_URL": redis_url}, tmp_path / "node.log") as node:
            await emitter.send_progress(JOB, "processing_rows", 1, extra={"row": 1})
            watcher = await Watcher(node.url).connect()
            assert (await watcher.subscribe(JOB))["ok"]
            for row in range(2, 10):  # the control arm: through the relay, not cut
                await emitter.send_progress(JOB, "processing_rows", row, extra={"row": row})
            await eventually(lambda: watcher.seqs(JOB)[-1:] == [9], what="seq 9 delivered")

            relay.cutting = True
            with _quiet("socketio"):
                event = await emitter.complete(JOB, result={"rows": 9})
            relay.cutting = False
            assert event is not None and event["seq"] == 10  # acknowledged
            assert relay.cuts >= 1
            status, job = await http_json("GET", f"{node.url}/api/jobs/{JOB}")
            assert status == 200 and (job["status"], job["seq"]) == ("done", 10)

            await eventually(
                lambda: watcher.seqs(JOB)[-1:] == [10], within=5, what="the final event"
            )
            assert watcher.seqs(JOB) == list(range(2, 11))
    finally:
        if watcher is not None:
            await watcher.close()
        await emitter.aclose()
        await relay.stop()


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """python-socketio logs the failed publish at ERROR; it is the fault under test."""
    log = logging.getLogger(name)
    level = log.level
    log.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        log.setLevel(level)
