"""Emit-to-browser latency and throughput, with a baseline measured in the same run.

Clients offer permessage-deflate as every browser does. Rows: the default server (compression
off, uvloop in serve), the same with ``TIDINGS_WS_COMPRESSION`` on (the baseline the default is
measured against), and the Redis store (the Lua merge and the Redis adapter on the path).

    python bench/bench_delivery.py [--clients 50] [--events 400]

Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import socketio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tidings import ProgressEmitter, Settings

from tests.support import RedisServer, running_app


async def measure(settings: Settings, clients: int, events: int) -> tuple[float, float, float]:
    """(events delivered per second, p50 ms, p99 ms) from emit to every client's handler."""
    async with running_app(settings) as (url, app):
        emitter = ProgressEmitter.for_app(app)
        latencies: list[float] = []
        received = 0
        done = asyncio.Event()

        def on_event(event: dict[str, object]) -> None:
            nonlocal received
            latencies.append(time.perf_counter() - float(event["extra"]["sent"]))  # type: ignore[index]
            received += 1
            if received == clients * events:
                done.set()

        sockets = []
        for _ in range(clients):
            client = socketio.AsyncClient(websocket_extra_options={"compress": 15})
            client.on("job_update", on_event)
            await client.connect(url, transports=["websocket"])
            await client.call("subscribe", {"job_id": "bench"})
            sockets.append(client)
        started = time.perf_counter()
        for index in range(events):
            await emitter.send_progress(
                "bench", "extracting", index * 100 / events, extra={"sent": time.perf_counter()}
            )
        await asyncio.wait_for(done.wait(), 120)
        elapsed = time.perf_counter() - started
        for client in sockets:
            await client.disconnect()
        latencies.sort()
        return (
            clients * events / elapsed,
            statistics.median(latencies) * 1000,
            latencies[int(len(latencies) * 0.99)] * 1000,
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--events", type=int, default=400)
    args = parser.parse_args()
    redis = RedisServer(Path(tempfile.mkdtemp()))
    redis.start()
    try:
        rows = [
            ("compression on (baseline)", Settings(ws_compression=True, coalesce_window=0)),
            ("compression off (default)", Settings(coalesce_window=0)),
            ("redis store, compression off", Settings(redis_url=redis.url, coalesce_window=0)),
        ]
        print(f"{args.clients} clients x {args.events} events, deflate offered by every client")
        print(f"{'':32} {'deliveries/s':>13} {'p50 ms':>8} {'p99 ms':>8}")
        baseline = None
        for name, settings in rows:
            rate, p50, p99 = await measure(settings, args.clients, args.events)
            baseline = baseline or rate
            print(f"{name:32} {rate:13,.0f} {p50:8.1f} {p99:8.1f}   x{rate / baseline:.2f}")
    finally:
        redis.stop()


if __name__ == "__main__":
    asyncio.run(main())
