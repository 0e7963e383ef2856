"""Parts for the fault suite: worker and client-fleet processes, RSS from /proc, percentiles.

The processes are started by the test and ended by their pid (``Spawned.stop``), also when the
test fails; one that a test SIGSTOPs is SIGCONT'd first.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.support import ROOT


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
