"""bench/bench_vs_node.py runs end to end in its smoke mode, and bench/memory_breakdown.py on a
few connections, so that they cannot rot.

It asserts only that the benchmark ran and measured every row (figures are never assertions in
the suite), and that the cluster row delivered every update on both sides: the peer's worker
writes the sharded adapter's message by hand, and a wrong channel or format delivers nothing.
Node, npm and redis-server are required, not optional: a missing one fails the test with a
sentence saying so (``.ci/run`` installs them), it is never skipped.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROWS = {
    "saturation",
    "fixed",
    "light",
    "worker",
    "worker_one",
    "idle_memory",
    "two_nodes",
    "idle_node",
    "cluster",
}


@pytest.mark.timeout(150)
def test_bench_vs_node_runs_in_smoke_mode(tmp_path: Path) -> None:
    missing = [tool for tool in ("node", "npm", "redis-server") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"the benchmark needs {', '.join(missing)} (.ci/run installs them)")

    done = subprocess.run(
        [sys.executable, "bench/bench_vs_node.py", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=140,
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "vs_node.json").read_text())
    assert report["conditions"]["smoke"] is True
    for side in ("tidings", "node"):
        assert set(report["runs"][side]) == ROWS, side
        assert report["runs"][side]["fixed"]["deliveries_per_s"] > 0, side
        cluster = report["runs"][side]["cluster"]
        assert (cluster["updates_missed"], cluster["silent_connections"]) == (0, 0), side
    assert report["runs"]["tidings_memory"]["fixed"]["deliveries_per_s"] > 0
    assert (tmp_path / "vs_node.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.timeout(90)
def test_memory_breakdown_runs() -> None:
    """bench/memory_breakdown.py on a few connections: every section printed, nothing else
    asserted."""
    if shutil.which("redis-server") is None:
        pytest.fail("the breakdown needs redis-server (.ci/run installs it)")
    done = subprocess.run(
        [sys.executable, "bench/memory_breakdown.py", "--connections", "20", "--frames", "4"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=80,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for section in ("RSS delta per connection", "Python allocations", "asyncio tasks", "in all"):
        assert section in done.stdout, (section, done.stdout[-3000:])
