"""The one load client of bench_vs_node.py: raw Engine.IO v4 / Socket.IO v5 over websockets.

No Socket.IO client library: each connection speaks the text framing itself
(``tests/raw_socketio.py``, shared with the fault suite's fleet), so both servers are measured
against the same, cheap client; it sends ``420["subscribe",{"job_id":...}]`` and awaits its ack
``430[...]``. Client ``i`` watches job ``(offset + i) % jobs``. Latency is emit -> receive, from
the ``sent`` seconds (since ``--t0``, wall clock) the worker puts in the update's ``extra``.

Protocol with the parent: prints ``ready {...}`` once every connection is subscribed; then reads
``go FROM TO`` (seconds since ``--t0``: the measuring window) or ``quit`` on stdin. After the
window it writes its latencies (float64, seconds) to ``--out`` and prints ``done {...}``, which
counts the connections the server ended (``lost``: a benchmark client never reconnects), the
updates a connection missed (``missed``: the gaps in the ``seq`` it heard after the one its
subscribe ack carried) and the connections that heard no update at all (``silent``).
"""

from __future__ import annotations

import argparse
import array
import asyncio
import json
import re
import sys
import time
from pathlib import Path

import aiohttp
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.raw_socketio import Gone, connect, receive, stdin

#: Seconds one connection may take to open and subscribe, under the load of the others opening.
OPEN_TIMEOUT = 60.0
SENT = re.compile(r'"sent":\s*(-?[0-9.]+(?:[eE][-+]?[0-9]+)?)')
#: The first ``seq`` of an ack (the job's) or an update (the Event's); the peer's ack has it as
#: a string (a Redis hash field).
SEQ = re.compile(r'"seq":\s*"?([0-9]+)')


class Stats:
    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.start = float("inf")
        self.end = float("-inf")
        self.received = 0
        self.lost = 0
        self.in_window = 0
        self.missed = 0
        self.silent = 0
        self.latencies = array.array("d")

    def record(self, text: str) -> None:
        now = time.time() - self.t0
        self.received += 1
        if self.start <= now <= self.end:
            self.in_window += 1
            match = SENT.search(text)
            if match:
                self.latencies.append(now - float(match.group(1)))


async def open_socket(
    session: aiohttp.ClientSession, base: str, job_id: str
) -> tuple[aiohttp.ClientWebSocketResponse, int]:
    """A connection subscribed to ``job_id``, and the job's ``seq`` its ack carried."""
    async with asyncio.timeout(OPEN_TIMEOUT):
        ws = await connect(session, base)
        await ws.send_str(f'420["subscribe",{{"job_id":{json.dumps(job_id)}}}]')
        while True:
            reply = await receive(ws)
            if reply.startswith("430"):
                if '"ok":true' not in reply.replace(" ", ""):
                    await ws.close()
                    raise Gone(f"subscribe refused: {reply[:200]!r}")
                acked = SEQ.search(reply)
                return ws, int(acked.group(1)) if acked else 0


async def listen(ws: aiohttp.ClientWebSocketResponse, acked: int, stats: Stats) -> None:
    """Records the updates ``ws`` hears; those it missed from the ``seq`` after ``acked`` on (each
    job's updates arrive in order)."""
    last = acked
    try:
        while True:
            data = await receive(ws)
            if data.startswith("42"):
                stats.record(data)
                if match := SEQ.search(data):
                    seq = int(match.group(1))
                    stats.missed += max(0, seq - last - 1)
                    last = max(last, seq)
    except Gone:  # cancelled when the client closes it: only the server's ending counts
        stats.lost += 1
    finally:
        stats.silent += last == acked


async def run(args: argparse.Namespace) -> None:
    stats = Stats(args.t0)
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        gate = asyncio.Semaphore(args.parallel)

        async def one(index: int) -> tuple[aiohttp.ClientWebSocketResponse, int]:
            async with gate:
                job = f"{args.prefix}{(args.offset + index) % args.jobs}"
                return await open_socket(session, args.url, job)

        started = time.perf_counter()
        results = await asyncio.gather(
            *(one(index) for index in range(args.clients)), return_exceptions=True
        )
        opened = [result for result in results if not isinstance(result, BaseException)]
        sockets = [ws for ws, _ in opened]
        errors = [repr(exc) for exc in results if isinstance(exc, BaseException)]
        listeners = [asyncio.create_task(listen(ws, acked, stats)) for ws, acked in opened]
        ready = {
            "connected": len(sockets),
            "failed": len(errors),
            "first_error": errors[0] if errors else None,
            "seconds": round(time.perf_counter() - started, 2),
        }
        print("ready " + json.dumps(ready), flush=True)

        command = (await (await stdin()).readline()).decode().split()
        if command and command[0] == "go":
            stats.start, stats.end = float(command[1]), float(command[2])
            await asyncio.sleep(max(0.0, stats.end - (time.time() - args.t0)) + args.drain)
        for task in listeners:
            task.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)
        for ws in sockets:
            await ws.close()
    if args.out:
        await asyncio.to_thread(Path(args.out).write_bytes, stats.latencies.tobytes())
    done = {
        "received": stats.received,
        "in_window": stats.in_window,
        "lost": stats.lost,
        "missed": stats.missed,
        "silent": stats.silent,
    }
    print("done " + json.dumps(done), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True, help="the server, http://127.0.0.1:PORT")
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--prefix", default="bench-")
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--t0", type=float, default=0)
    parser.add_argument("--parallel", type=int, default=200, help="connections opened at once")
    parser.add_argument("--drain", type=float, default=0.3)
    parser.add_argument("--out", default="")
    uvloop.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
