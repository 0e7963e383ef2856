"""``tidings`` on the command line, as real processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys

import aiohttp
import jwt

from tests.support import ROOT, http_json, server_process

SECRET = "cli-secret-0123456789-0123456789-abcdef"


def tidings(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    return subprocess.run(
        [sys.executable, "-m", "tidings", *args],
        cwd=ROOT,
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_say_prints_the_friendly_sentence() -> None:
    done = tidings("say", "duplicate_check", "--context", "filename=expenses.csv")
    assert (done.returncode, done.stdout) == (0, "Checking if I've seen expenses.csv before...\n")
    counts = tidings(
        "say",
        "delta_analysis_complete",
        "--context",
        "new_rows=42",
        "--context",
        "existing_rows=156",
    )
    assert counts.stdout == "Spotted the differences: 42 new rows, 156 I already know\n"


def test_token_mints_a_jwt_and_needs_a_secret() -> None:
    minted = tidings(
        "token",
        "--user",
        "u1",
        "--job",
        "j1",
        "--job",
        "j2",
        "--ttl",
        "60",
        env={"TIDINGS_SECRET": SECRET},
    )
    claims = jwt.decode(minted.stdout.strip(), SECRET, algorithms=["HS256"])
    assert (claims["sub"], claims["jobs"]) == ("u1", ["j1", "j2"])
    refused = tidings("token", "--user", "u1")
    assert refused.returncode == 1
    assert refused.stderr == "tidings: error: No secret is configured, so no token can be minted.\n"


def test_bad_arguments_get_a_sentence_and_exit_2() -> None:
    for args, expected in [
        (("emit", "job", "step", "150"), "progress must be between 0 and 100"),
        (("emit", "job", "step", "lots"), "progress must be a number"),
        (("say", "step", "--context", "novalue"), "expected KEY=VALUE"),
        (("emit", "job", "step", "--complete", "--fail", "x"), "not allowed with argument"),
        (("serve", "--port", "http"), "invalid int value"),
        (("launch",), "invalid choice"),
    ]:
        result = tidings(*args)
        assert result.returncode == 2, args
        assert expected in result.stderr and "Traceback" not in result.stderr


def test_a_short_secret_is_refused_with_a_sentence() -> None:
    result = tidings("token", "--user", "u1", env={"TIDINGS_SECRET": "short"})
    assert result.returncode == 2
    assert "TIDINGS_SECRET must be at least 32 bytes" in result.stderr


async def test_emit_through_http_reaches_the_server_and_errors_are_sentences() -> None:
    with server_process({"TIDINGS_API_KEY": "k" * 16}) as node:
        env = {"TIDINGS_API_KEY": "k" * 16}
        emitted = tidings(
            "emit", "cli-job", "extracting", "40", "--context", "rows=3", "--url", node.url, env=env
        )
        assert emitted.returncode == 0, emitted.stderr
        assert json.loads(emitted.stdout)["seq"] == 1
        finished = tidings("emit", "cli-job", "complete", "--complete", "--url", node.url, env=env)
        assert json.loads(finished.stdout)["status"] == "done"
        late = tidings("emit", "cli-job", "extracting", "50", "--url", node.url, env=env)
        assert late.returncode == 1
        assert late.stderr == (
            "tidings: error: Job cli-job is already done and takes no more updates.\n"
        )
        status, job = await http_json("GET", f"{node.url}/api/jobs/cli-job")
        assert status == 200 and job["progress"] == 100
        nowhere = tidings("emit", "j", "s", "--url", "http://127.0.0.1:9", env=env)
        assert nowhere.returncode == 1 and "Could not reach the server" in nowhere.stderr


def test_serve_stops_cleanly_on_sigterm() -> None:
    with server_process() as node:
        assert node.process is not None
        os.kill(node.process.pid, signal.SIGTERM)
        assert node.process.wait(timeout=15) == 0


async def subscribed(url: str, watcher: asyncio.subprocess.Process, within: float = 30) -> None:
    """Until the node counts the watcher's subscription (its ``/metrics`` gauge): from then on,
    every event of the job reaches it. A watcher that exits ends the wait."""
    deadline = asyncio.get_running_loop().time() + within
    while watcher.returncode is None:
        status, metrics = await http_text(f"{url}/metrics")
        if status == 200 and "\ntidings_subscriptions 1.0\n" in metrics:
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("timed out waiting for the watcher to subscribe")
        await asyncio.sleep(0.05)
    raise AssertionError(f"the watcher exited with {watcher.returncode} before subscribing")


async def http_text(url: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


async def test_watch_follows_a_job_to_its_end() -> None:

    with server_process({"TIDINGS_API_KEY": "w" * 16}) as node:
        watcher = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tidings",
            "watch",
            "watched",
            "--url",
            node.url,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        await subscribed(node.url, watcher)  # the job does not exist yet: nothing else to see
        for body in (
            {"step": "extracting", "progress": 30},
            {"step": "complete", "status": "done"},
        ):
            status, _ = await http_json(
                "POST", f"{node.url}/api/jobs/watched/progress", body, "w" * 16
            )
            assert status == 202
        out, err = await asyncio.wait_for(watcher.communicate(), 60)
        assert watcher.returncode == 0, err.decode()
        assert "Done!" in out.decode()
