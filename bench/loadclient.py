"""The one load client of bench_vs_node.py: raw Engine.IO v4 / Socket.IO v5 over websockets.

No Socket.IO client library: each connection speaks the text framing itself (``0{...}`` open,
``40`` connect, ``420["subscribe",{"job_id":...}]`` and its ack ``430[...]``, pings ``2`` ->
``3``), so both servers are measured against the same, cheap client. Client ``i`` watches job
``(offset + i) % jobs``. Latency is emit -> receive, from the ``sent`` seconds (since ``--t0``,
wall clock) the worker puts in the update's ``extra``.

Protocol with the parent: prints ``ready {...}`` once every connection is subscribed; then reads
``go FROM TO`` (seconds since ``--t0``: the measuring window) or ``quit`` on stdin. After the
window it writes its latencies (float64, seconds) to ``--out`` and prints ``done {...}``, which
counts the connections the server ended (``lost``: a benchmark client never reconnects).
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

SENT = re.compile(r'"sent":\s*(-?[0-9.]+(?:[eE][-+]?[0-9]+)?)')


class Stats:
    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.start = float("inf")
        self.end = float("-inf")
        self.received = 0
        self.lost = 0
        self.in_window = 0
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
) -> aiohttp.ClientWebSocketResponse:
    url = base.replace("http", "ws", 1) + "/socket.io/?EIO=4&transport=websocket"
    ws = await session.ws_connect(url, heartbeat=None, autoping=True, compress=0)
    opened = await ws.receive_str(timeout=30)
    if not opened.startswith("0{"):
        raise RuntimeError(f"expected an Engine.IO open packet, got {opened[:80]!r}")
    await ws.send_str("40")
    while True:
        reply = await ws.receive_str(timeout=30)
        if reply == "2":
            await ws.send_str("3")
            continue
        if not reply.startswith("40"):
            raise RuntimeError(f"namespace connect refused: {reply[:200]!r}")
        break
    await ws.send_str(f'420["subscribe",{{"job_id":{json.dumps(job_id)}}}]')
    while True:
        reply = await ws.receive_str(timeout=30)
        if reply == "2":
            await ws.send_str("3")
        elif reply.startswith("430"):
            if '"ok":true' not in reply.replace(" ", ""):
                raise RuntimeError(f"subscribe refused: {reply[:200]!r}")
            return ws


async def listen(ws: aiohttp.ClientWebSocketResponse, stats: Stats) -> None:
    async for message in ws:
        if message.type is not aiohttp.WSMsgType.TEXT:
            break
        data: str = message.data
        if data == "2":
            await ws.send_str("3")
        elif data.startswith("42"):
            stats.record(data)
        elif data.startswith("1") or data.startswith("41"):
            break  # the server closed the connection or the namespace
    stats.lost += 1  # cancelled when the client closes it: only the server's ending counts


async def run(args: argparse.Namespace) -> None:
    stats = Stats(args.t0)
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        gate = asyncio.Semaphore(args.parallel)

        async def one(index: int) -> aiohttp.ClientWebSocketResponse:
            async with gate:
                job = f"{args.prefix}{(args.offset + index) % args.jobs}"
                return await open_socket(session, args.url, job)

        started = time.perf_counter()
        results = await asyncio.gather(
            *(one(index) for index in range(args.clients)), return_exceptions=True
        )
        sockets = [ws for ws in results if isinstance(ws, aiohttp.ClientWebSocketResponse)]
        errors = [repr(exc) for exc in results if isinstance(exc, BaseException)]
        listeners = [asyncio.create_task(listen(ws, stats)) for ws in sockets]
        ready = {
            "connected": len(sockets),
            "failed": len(errors),
            "first_error": errors[0] if errors else None,
            "seconds": round(time.perf_counter() - started, 2),
        }
        print("ready " + json.dumps(ready), flush=True)

        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        command = (await reader.readline()).decode().split()
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
    done = {"received": stats.received, "in_window": stats.in_window, "lost": stats.lost}
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
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(run(args))
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(run(args))


if __name__ == "__main__":
    main()
