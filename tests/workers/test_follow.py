"""``tidings emit --follow``: a tool that can only write a file reports progress."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from tests.support import ROOT, http_json, server_process


async def test_follow_emits_each_real_change_until_the_job_ends(tmp_path: Path) -> None:
    status = tmp_path / "status.json"
    with server_process({"TIDINGS_API_KEY": "follow-key"}) as node:
        env = {**os.environ, "TIDINGS_API_KEY": "follow-key"}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tidings",
            "emit",
            "--follow",
            str(status),
            "--job",
            "render-1",
            "--url",
            node.url,
            "--debounce",
            "50",
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
        )
        writes: list[object] = [
            {"step": "rendering", "progress": 10},
            {"step": "rendering", "progress": 10},  # no change: nothing is emitted
            "{not json",  # half-written: ignored
            {"step": "rendering", "progress": 55, "context": {"frames": 12}},
            {"step": "encoding", "progress": 80},
            {"step": "complete", "status": "done", "result": {"frames": 12}},
        ]
        for body in writes:
            text = body if isinstance(body, str) else json.dumps(body)
            await asyncio.to_thread(status.write_text, text)
            await asyncio.sleep(0.4)
        out, _ = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0
        events = [json.loads(line) for line in out.decode().splitlines()]
        assert [(e["step"], e["progress"]) for e in events] == [
            ("rendering", 10),
            ("rendering", 55),
            ("encoding", 80),
            ("complete", 100),
        ]
        _, job = await http_json("GET", f"{node.url}/api/jobs/render-1")
        assert job["status"] == "done" and job["result"] == {"frames": 12}


def test_follow_needs_a_job(tmp_path: Path) -> None:
    import subprocess

    result = subprocess.run(
        [sys.executable, "-m", "tidings", "emit", "--follow", str(tmp_path / "s.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "--follow takes only --job JOB" in result.stderr
