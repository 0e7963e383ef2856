"""Parts for the fault suite: worker and client-fleet processes, RSS from /proc, percentiles,
and ``jobs_under_way``, the scene the Redis faults are played on.

The processes are started by the test and ended by their pid (``Spawned.stop``), also when the
test fails; one that a test SIGSTOPs is SIGCONT'd first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.cluster.parts import seq_on, until
from tests.support import ROOT, RedisServer, ServerProcess


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def figures(values: list[float]) -> str:
    """``p50 … p99 … max …`` in milliseconds, for printing (never for asserting)."""
    return (
        f"p50 {percentile(values, 0.5) * 1000:.0f} ms, p99 {percentile(values, 0.99) * 1000:.0f} "
        f"ms, max {max(values, default=float('nan')) * 1000:.0f} ms (n={len(values)})"
    )


class Spawned:
    """``python -m MODULE ARGS`` from the repository root, stdin and stdout piped."""

    def __init__(self, module: str, *args: str) -> None:
        self.argv = [sys.executable, "-m", module, *args]
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> Spawned:
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        return self

    async def line(self, prefix: str, within: float) -> str:
        """The next stdout line starting with ``prefix`` (the rest of it)."""
        assert self.process is not None and self.process.stdout is not None
        async with asyncio.timeout(within):
            while True:
                raw = await self.process.stdout.readline()
                if not raw:
                    raise RuntimeError(f"{self.argv[2]} exited with {await self.process.wait()}")
                text = raw.decode().strip()
                if text.startswith(prefix):
                    return text[len(prefix) :].strip()

    async def say(self, text: str) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(text.encode() + b"\n")
        await self.process.stdin.drain()

    async def finish(self, within: float) -> dict[str, Any]:
        """Wait for a clean end; the JSON object on the last line of stdout."""
        assert self.process is not None
        async with asyncio.timeout(within):
            out, _ = await self.process.communicate()
        assert self.process.returncode == 0, f"{self.argv[2]} exited {self.process.returncode}"
        return dict(json.loads(out.decode().strip().splitlines()[-1]))

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):  # it may have ended, not yet reaped
                os.kill(self.process.pid, signal.SIGKILL)
            await self.process.wait()


def worker(
    redis_url: str, prefix: str, jobs: int, updates: int, rate: float, pad: int = 0
) -> Spawned:
    """tests/chaos/steady_worker.py: ``updates`` updates to each job, ``rate`` a second in all."""
    return Spawned(
        "tests.chaos.steady_worker",
        redis_url,
        "--prefix", prefix,
        "--jobs", str(jobs),
        "--updates", str(updates),
        "--rate", str(rate),
        "--pad", str(pad),
    )  # fmt: skip


def fleet(url: str, prefix: str, jobs: int, clients: int, out: Path, **more: int) -> Spawned:
    """tests/chaos/fleet.py: ``clients`` raw Socket.IO clients keeping the client rule."""
    extra = [item for name, value in more.items() for item in (f"--{name}", str(value))]
    return Spawned(
        "tests.chaos.fleet",
        "--url", url,
        "--prefix", prefix,
        "--jobs", str(jobs),
        "--clients", str(clients),
        "--out", str(out),
        *extra,
    )  # fmt: skip


def read_fleet(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.read_text().splitlines()]


async def reached(url: str, job_id: str, seq: int) -> bool:
    """Whether the node reports ``job_id`` at ``seq`` or past it."""
    return await seq_on(url, job_id) >= seq


@dataclass(frozen=True)
class UnderWay:
    """The parts ``jobs_under_way`` started, for the fault to be played on."""

    redis: RedisServer
    node: ServerProcess
    clients: Spawned
    feeder: Spawned
    #: Where the fleet writes each client's record (``read_fleet``), once it is done.
    out: Path

    async def finish(self) -> dict[str, Any]:
        """Wait until the worker has sent every update and the clients have seen every job end;
        the worker's summary."""
        summary = await self.feeder.finish(within=60)
        await self.clients.line("done", within=60)
        return summary


@contextlib.asynccontextmanager
async def jobs_under_way(
    tmp_path: Path,
    prefix: str,
    *,
    jobs: int,
    clients: int,
    updates: int,
    rate: float,
    started: int,
    **fleet_options: int,
) -> AsyncIterator[UnderWay]:
    """A private Redis without persistence, one node on it (probing its subscription every
    0.5 s), ``clients`` fleet clients watching ``jobs`` jobs and a worker sending ``updates`` to
    each at ``rate`` a second in all; entered once the last job has reached seq ``started``.
    Everything is stopped on the way out, by pid, whatever the test did to it."""
    redis = RedisServer(tmp_path)
    node = ServerProcess(
        {"TIDINGS_REDIS_URL": redis.url, "TIDINGS_PROBE_INTERVAL": "0.5"}, tmp_path / "node.log"
    )
    out = tmp_path / "fleet.jsonl"
    spawned: list[Spawned] = []
    try:
        redis.start()
        await asyncio.to_thread(node.start)
        watching = fleet(node.url, prefix, jobs, clients, out, **fleet_options)
        spawned.append(watching)
        await watching.start()
        await watching.line("ready", within=30)
        feeder = worker(redis.url, prefix, jobs, updates, rate)
        spawned.append(feeder)
        await feeder.start()
        last = f"{prefix}{jobs - 1}"
        await until(lambda: reached(node.url, last, started), what=f"{last} at seq {started}")
        yield UnderWay(redis, node, watching, feeder, out)
    finally:
        for each in spawned:
            await each.stop()
        with contextlib.suppress(Exception):
            await asyncio.to_thread(node.stop)
        redis.stop()
