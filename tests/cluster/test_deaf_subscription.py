"""A subscription that stays connected but hears nothing.

The probe notices, ``/readyz`` reports it, the node subscribes again, and its clients (sockets
and SSE streams) catch up on what it missed, even when nothing more is emitted after the heal.
A node without the probe stays deaf and says it is ready: the control arm.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tidings import ProgressEmitter, Settings

from tests.cluster.conftest import running_nodes
from tests.cluster.parts import (
    RoamingWatcher,
    SubscriptionBlackHole,
    collect_stream,
    readyz,
    until,
)
from tests.support import RedisServer, eventually, http_json

#: A probe interval so long that it never fires within a test: a node without the probe.
NO_PROBE = "3600"


@pytest.fixture
async def relay(redis_server: RedisServer) -> AsyncIterator[SubscriptionBlackHole]:
    hole = await SubscriptionBlackHole(redis_server.port).start()
    yield hole
    await hole.stop()


async def test_a_deaf_subscription_is_noticed_reported_healed_and_caught_up(
    relay: SubscriptionBlackHole, redis_url: str, tmp_path: Path
) -> None:
    job_id = "deaf"
    async with contextlib.AsyncExitStack() as stack:
        nodes = await stack.enter_async_context(
            running_nodes(
                tmp_path,
                {"TIDINGS_REDIS_URL": relay.url},
                {"TIDINGS_REDIS_URL": relay.url, "TIDINGS_PROBE_INTERVAL": NO_PROBE},
            )
        )
        probed, unprobed = nodes
        emitter = ProgressEmitter.from_url(redis_url, Settings(coalesce_window=0))
        stack.push_async_callback(emitter.aclose)
        watchers = []
        for node in nodes:
            watchers.append(await RoamingWatcher([node.url]).connect())
            stack.push_async_callback(watchers[-1].close)

        async def emit(rows: range) -> None:
            for row in rows:
                await emitter.send_progress(job_id, "processing_rows", row, extra={"row": row})

        for watcher in watchers:
            await watcher.subscribe(job_id)
        await emit(range(1, 6))
        streamed: list[list[tuple[str, dict[str, Any]]]] = [[], []]
        streams = []
        for node, sink in zip(nodes, streamed, strict=True):
            streams.append(
                asyncio.create_task(collect_stream(f"{node.url}/api/jobs/{job_id}/stream", sink))
            )
            stack.callback(streams[-1].cancel)
        for watcher, sink in zip(watchers, streamed, strict=True):
            await eventually(
                lambda w=watcher, s=sink: len(w.applied) == 5 and s, what="the first five"
            )

        relay.deafen()  # every subscription, and every new one, now hears nothing
        await emit(range(6, 10))
        await emitter.complete(job_id)  # the end, too, is emitted while the nodes are deaf
        await until(lambda: _status_is(probed.url, 503), what="the probed node not ready")
        status, body = await http_json("GET", f"{probed.url}/readyz")
        assert (status, body["error"]["code"]) == (503, "unavailable")
        subscribed = relay.subscriptions
        await eventually(lambda: relay.subscriptions > subscribed, what="subscribing again")
        assert await readyz(probed.url) == 503  # a new subscription, deaf too, changes nothing
        assert await readyz(unprobed.url) == 200  # deaf, and nothing says so

        relay.hear()  # new subscriptions work again; the deaf ones stay deaf
        await until(lambda: _status_is(probed.url, 200), what="the probed node ready again")
        # Nothing more is emitted: what the healed node's clients get now is catch-up.
        await eventually(lambda: watchers[0].seqs(job_id)[-1:] == [10], what="the end")
        async with asyncio.timeout(10):
            await streams[0]  # the SSE stream ends after the terminal event

    healed, deaf = watchers
    assert healed.seqs(job_id) == list(range(1, 11))
    assert healed.reconnects == 1  # its node closed the connection so that it caught up
    assert [data["seq"] for _, data in streamed[0]] == list(range(5, 11))  # snapshot, then each
    assert streamed[0][-1][0] == "job_complete"
    # The control: nothing since the fault, not even the end, on the socket or the stream.
    assert deaf.seqs(job_id) == [1, 2, 3, 4, 5]
    assert deaf.reconnects == 0
    assert [data["seq"] for _, data in streamed[1]] == [5]


async def _status_is(url: str, status: int) -> bool:
    return await readyz(url) == status
