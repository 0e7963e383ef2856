"""A reconnect storm: 1,000 clients over 50 jobs when their node is SIGKILLed and restarted.

Issue 14, item 6. The Redis store, one node, a worker writing to Redis steadily throughout (it
needs no node). The node dies with every client on it and comes back on the same port while the
worker goes on; all 1,000 clients reconnect at once, subscribe again with ``epoch`` and
``since``, and each must end with exactly seq 1..N of its job, in one epoch. The control arm,
20 of the clients that reconnect without ``since``, shows the hole the others' catch-up filled.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from tests.chaos.faults import Spawned, figures, fleet, reached, read_fleet, worker
from tests.cluster.parts import until
from tests.support import ServerProcess

CLIENTS = 1000
PROCESSES = 4  # fleets of 250 raw clients each
PLAIN = 5  # per fleet: the control clients, reconnecting without since
JOBS = 50
UPDATES = 40  # per job
RATE = 120.0  # updates a second, all jobs together: ~2,400 deliveries a second
PREFIX = "storm-"


async def test_a_thousand_clients_reconnect_after_a_node_restart_and_miss_nothing(
    redis_url: str, tmp_path: Path
) -> None:
    node = ServerProcess({"TIDINGS_REDIS_URL": redis_url}, tmp_path / "node.log")
    spawned: list[Spawned] = []
    outs = [tmp_path / f"fleet-{index}.jsonl" for index in range(PROCESSES)]
    share = CLIENTS // PROCESSES
    try:
        await asyncio.to_thread(node.start)
        fleets = [
            fleet(node.url, PREFIX, JOBS, share, out, offset=index * share, plain=PLAIN)
            for index, out in enumerate(outs)
        ]
        spawned += fleets
        for each in fleets:
            await each.start()
        for each in fleets:
            await each.line("ready", within=60)
        feeder = worker(redis_url, PREFIX, JOBS, UPDATES, RATE)
        spawned.append(feeder)
        await feeder.start()
        await until(
            lambda: reached(node.url, f"{PREFIX}{JOBS - 1}", UPDATES // 4), what="a quarter"
        )

        assert node.process is not None
        await asyncio.to_thread(node.kill)
        killed_at = time.time()
        await asyncio.sleep(1.0)  # the worker goes on: every job gets events nobody hears
        await asyncio.to_thread(node.start)
        back_at = time.time()

        summary = await feeder.finish(within=60)
        await asyncio.gather(*(each.line("done", within=60) for each in fleets))
    finally:
        for each in spawned:
            await each.stop()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(node.stop)

    clients = [client for out in outs for client in read_fleet(out)]
    assert len(clients) == CLIENTS
    careful = [client for client in clients if not client["plain"]]
    plain = [client for client in clients if client["plain"]]
    wrong = [
        (client["job_id"], client["applied"])
        for client in careful
        if client["applied"] != list(range(1, UPDATES + 1))
        or len(client["epochs"]) != 1
        or client["status"] != "done"
    ]
    assert wrong == [], f"{len(wrong)} clients did not apply exactly 1..{UPDATES}: {wrong[:3]}"
    assert all(client["back"] for client in careful), "a client never reconnected"
    # The control arm: the same reconnect without since leaves a hole in every plain client.
    holes = [sorted(set(range(1, UPDATES + 1)) - set(client["applied"])) for client in plain]
    assert all(holes), holes
    assert all(client["applied"] == sorted(set(client["applied"])) for client in plain)

    since_cut = [client["back"][0] - client["cuts"][0] for client in careful]
    since_up = [max(0.0, client["back"][0] - back_at) for client in careful]
    print(
        f"\n{CLIENTS} clients, {JOBS} jobs x {UPDATES} updates; node down "
        f"{back_at - killed_at:.1f} s (restart included); worker sends refused: "
        f"{summary['errors']}\ntime to recover from the cut: {figures(since_cut)}"
        f"\ntime to recover once the node answered /healthz: {figures(since_up)}"
        f"\ncontrol clients (no since): {len(plain)}, events lost each: "
        f"{sorted(len(hole) for hole in holes)}"
    )
