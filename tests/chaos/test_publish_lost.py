"""An update stored in Redis is never left unpublished: its watchers get even the last one.

Found while writing the Redis restart test, when a worker's update was two Redis commands (the
Lua merge, then a PUBLISH through python-socketio's Redis manager, which tried twice and then
only logged "giving up"): an acknowledged final update whose PUBLISH failed never reached the
job's watchers, who stayed on ``processing`` while the store said ``done``. Now the merge script
publishes in the same atomic call, so there is no second command to lose.

A relay between the emitter and Redis cuts every connection that sends PUBLISH while
``cutting`` is on; the node talks to Redis directly. The final update goes through it with
cutting on and arrives, and the relay saw no PUBLISH to cut. The control arm shows the relay does
cut a PUBLISH sent through it (so the emitter would have lost it under the old design).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.exceptions import RedisError
from tidings import ProgressEmitter, Settings

from tests.relay import Link, RedisRelay
from tests.support import Watcher, eventually, http_json, server_process

JOB = "final-event"
PUBLISH = b"$7\r\nPUBLISH\r\n"  # the command's name as RESP sends it


class PublishCutter(RedisRelay):
    """A TCP relay to Redis that closes any connection sending PUBLISH while ``cutting``."""

    def __init__(self, redis_port: int) -> None:
        super().__init__(redis_port)
        self.cutting = False
        self.cuts = 0

    async def passes(self, chunk: bytes, link: Link, *, to_redis: bool) -> bool:
        if to_redis and self.cutting and PUBLISH in chunk.upper():
            self.cuts += 1
            raise ConnectionResetError("PUBLISH cut")
        return True


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
            event = await emitter.complete(JOB, result={"rows": 9})
            assert event is not None and event["seq"] == 10  # acknowledged
            assert relay.cuts == 0  # the worker sent no PUBLISH of its own to lose
            # The control arm: a PUBLISH sent through the relay is cut.
            client = aioredis.Redis.from_url(relay.url)
            with pytest.raises(RedisError):
                await client.publish("tidings-test", "x")
            await client.aclose()
            relay.cutting = False
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
