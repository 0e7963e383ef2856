"""Many cheap Socket.IO clients in one process, on the raw connections of tests/raw_socketio.py.

``python -m tests.chaos.fleet --url U --prefix P --jobs J --clients K [--offset O] [--plain M]
--out FILE``

Client ``i`` watches job ``P<(O + i) % J>`` and keeps the client rule of docs/protocol.md by
hand: ``(epoch, seq)`` per job; apply ``last + 1``; drop ``<= last``; on a gap or another epoch
subscribe again with ``epoch`` and ``since`` (events arriving meanwhile are held and replayed).
When its connection drops it reconnects (backoff 0.05 s doubling to 1 s, with jitter) and
re-subscribes with ``epoch`` and ``since``. The first ``M`` clients are *plain*: they reconnect
and subscribe afresh, without ``since``, and apply whatever arrives (the control arm).

``log`` is every state the client took, in order: ``["snapshot", epoch, seq]`` when it replaced
its state with a Snapshot (a fresh subscribe, or ``recovered: false``), ``["event", epoch, seq]``
when it applied an Event.

Prints ``ready {...}`` once every client has subscribed, then runs until every client has seen
its job end (or ``--deadline`` seconds pass, or ``quit`` arrives on stdin) and writes one JSON
object per client to FILE: the seq of its first snapshot, the seqs it applied, its epochs, and
for each reconnect the wall-clock times it was cut off and subscribed again, and for each applied
event that carries ``extra.sent`` (tests/chaos/steady_worker.py) when it was sent and applied.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from pathlib import Path
from typing import Any

import aiohttp
import uvloop

from tests.raw_socketio import Gone, connect, receive, stdin

TERMINAL = ("done", "error", "cancelled")


class Client:
    def __init__(self, session: aiohttp.ClientSession, url: str, job_id: str, plain: bool) -> None:
        self.session = session
        self.url = url
        self.job_id = job_id
        self.plain = plain
        self.last: tuple[str, int] | None = None
        self.start_seq: int | None = None
        self.applied: list[int] = []
        self.arrivals: list[tuple[float, float]] = []  # (applied at, sent at), wall clock
        self.log: list[tuple[str, str, int]] = []  # ("snapshot" | "event", epoch, seq)
        self.epochs: list[str] = []
        self.cuts: list[float] = []
        self.back: list[float] = []
        self.status = ""
        self.ready = asyncio.Event()
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.ack_id = 0

    # -- the client rule -------------------------------------------------------------------

    def _adopt(self, job: dict[str, Any]) -> None:
        self.last = (job["epoch"], int(job["seq"]))
        self.log.append(("snapshot", *self.last))
        self.status = job["status"]
        if self.start_seq is None:
            self.start_seq = int(job["seq"])
        if job["epoch"] not in self.epochs:
            self.epochs.append(job["epoch"])

    def _apply(self, event: dict[str, Any]) -> None:
        self.last = (event["epoch"], int(event["seq"]))
        self.log.append(("event", *self.last))
        self.status = event["status"]
        self.applied.append(int(event["seq"]))
        sent = (event.get("extra") or {}).get("sent")
        if isinstance(sent, float):
            self.arrivals.append((time.time(), sent))
        if event["epoch"] not in self.epochs:
            self.epochs.append(event["epoch"])

    def _needs_catch_up(self, event: dict[str, Any]) -> bool:
        """Apply or drop ``event``; True when there is a hole to fill."""
        if self.plain:
            self._apply(event)
            return False
        if self.last is None:
            if event["seq"] == 1:
                self._apply(event)
                return False
            return True
        epoch, seq = self.last
        if event["epoch"] == epoch and event["seq"] <= seq:
            return False
        if event["epoch"] == epoch and event["seq"] == seq + 1:
            self._apply(event)
            return False
        return True

    # -- the wire --------------------------------------------------------------------------

    async def _send(self, text: str) -> None:
        assert self.ws is not None
        await self.ws.send_str(text)

    async def _subscribe(self, catch_up: bool) -> int:
        self.ack_id += 1
        payload: dict[str, Any] = {"job_id": self.job_id}
        if catch_up and self.last is not None:
            payload["epoch"], payload["since"] = self.last
        await self._send(f"42{self.ack_id}" + json.dumps(["subscribe", payload]))
        return self.ack_id

    def _take_ack(self, ack: dict[str, Any], held: list[dict[str, Any]]) -> bool:
        """Apply a subscribe ack and the events held meanwhile; True when another is needed."""
        if not ack.get("ok"):
            raise Gone(f"subscribe refused: {ack}")
        if ack["job"] is not None and not ack["recovered"]:
            self._adopt(ack["job"])
        elif ack["job"] is None and self.start_seq is None:
            self.start_seq = 0  # the job does not exist yet: its first event is seq 1
        for event in ack["events"]:
            self._needs_catch_up(event)
        again = False
        for event in held:
            again = self._needs_catch_up(event) or again
        return again

    async def _session(self) -> None:
        self.ws = ws = await connect(self.session, self.url)
        try:
            pending: int | None = await self._subscribe(catch_up=not self.plain)
            first = True
            held: list[dict[str, Any]] = []
            while True:
                data = await receive(ws)
                if data.startswith("43"):
                    number, _, body = data[2:].partition("[")
                    if pending is not None and int(number) == pending:
                        ack = json.loads("[" + body)[0]
                        pending = None
                        again = self._take_ack(ack, held)
                        held = []
                        if first:
                            first = False
                            if len(self.cuts) > len(self.back):
                                self.back.append(time.time())
                            self.ready.set()
                        if again:
                            pending = await self._subscribe(catch_up=True)
                elif data.startswith("42"):
                    name, payload = json.loads(data[2:])
                    if name == "job_batch":
                        events = payload["events"]
                    elif name in ("job_update", "job_complete", "job_error"):
                        events = [payload]
                    else:
                        continue
                    for event in events:
                        if event["job_id"] != self.job_id:
                            continue
                        if pending is not None:
                            held.append(event)
                        elif self._needs_catch_up(event):
                            pending = await self._subscribe(catch_up=True)
                if pending is None and self.status in TERMINAL:
                    return
        finally:
            await ws.close()

    async def run(self) -> None:
        delay = 0.05
        while True:
            try:
                await self._session()
                return
            except (Gone, aiohttp.ClientError, ConnectionError, OSError, TimeoutError):
                pass
            if self.ready.is_set() and len(self.back) == len(self.cuts):
                self.cuts.append(time.time())  # cut off after subscribing: an outage begins
                delay = 0.05
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 1.0)

    def summary(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "plain": self.plain,
            "start_seq": self.start_seq,
            "applied": self.applied,
            "epochs": self.epochs,
            "status": self.status,
            "cuts": self.cuts,
            "back": self.back,
            "arrivals": self.arrivals,
            "log": self.log,
        }


async def run(args: argparse.Namespace) -> None:
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        clients = [
            Client(
                session, args.url, f"{args.prefix}{(args.offset + i) % args.jobs}", i < args.plain
            )
            for i in range(args.clients)
        ]
        gate = asyncio.Semaphore(args.parallel)

        async def start(client: Client) -> None:
            async with gate:
                task = asyncio.create_task(client.run())
                tasks.append(task)
                ready = asyncio.create_task(client.ready.wait())
                await asyncio.wait([task, ready], return_when=asyncio.FIRST_COMPLETED)
                ready.cancel()

        tasks: list[asyncio.Task[None]] = []
        await asyncio.gather(*(start(client) for client in clients))
        print("ready " + json.dumps({"clients": len(clients)}), flush=True)

        quit_ = asyncio.create_task((await stdin()).readline())
        everyone = asyncio.create_task(_all(tasks))
        await asyncio.wait(
            [quit_, everyone], timeout=args.deadline, return_when=asyncio.FIRST_COMPLETED
        )
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        quit_.cancel()
    lines = "".join(json.dumps(client.summary()) + "\n" for client in clients)
    await asyncio.to_thread(Path(args.out).write_text, lines)
    print("done", flush=True)


async def _all(tasks: list[asyncio.Task[None]]) -> None:
    await asyncio.gather(*tasks, return_exceptions=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--jobs", type=int, required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--plain", type=int, default=0, help="clients that reconnect without since")
    parser.add_argument("--parallel", type=int, default=100, help="connections opened at once")
    parser.add_argument("--deadline", type=float, default=80)
    parser.add_argument("--out", required=True)
    uvloop.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
