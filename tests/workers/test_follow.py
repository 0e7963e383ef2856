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
    # The first state is there before the process starts (it emits it when it reads the file
    # first), and each later write waits for the line of the one before: a loaded machine that
    # starts Python slowly then loses no write to the race between writing and watching.
    status.write_text(json.dumps({"step": "rendering", "progress": 10}))
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
        assert process.stdout is not None
        lines = [await asyncio.wait_for(process.stdout.readline(), 30)]
        writes: list[tuple[object, bool]] = [  # (what is written, whether it emits)
            ({"step": "rendering", "progress": 10}, False),  # no change: nothing is emitted
            ("{not json", False),  # half-written: ignored
            ({"step": "rendering", "progress": 55, "context": {"frames": 12}}, True),
            ({"step": "encoding", "progress": 80}, True),
            ({"step": "complete", "status": "done", "result": {"frames": 12}}, True),
        ]
        for body, emits in writes:
            text = body if isinstance(body, str) else json.dumps(body)
            await asyncio.to_thread(status.write_text, text)
            if emits:
                lines.append(await asyncio.wait_for(process.stdout.readline(), 30))
            else:
                await asyncio.sleep(0.4)
        out, _ = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0
        lines.extend(out.splitlines())
        events = [json.loads(line) for line in lines if line.strip()]
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
