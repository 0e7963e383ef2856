"""``tidings`` on the command line, as real processes."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import jwt
import pytest
from tidings.cli.emit import step_hint
from tidings.cli.main import build_parser

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
    assert refused.stderr.startswith("tidings: error: tidings token needs TIDINGS_SECRET")


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


def _every_argument(parser: argparse.ArgumentParser, path: str = "tidings") -> Iterator[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, command in action.choices.items():
                yield from _every_argument(command, f"{path} {name}")
        elif not action.help:
            yield f"{path} {'/'.join(action.option_strings) or action.dest}"


def test_every_argument_has_a_description() -> None:
    assert list(_every_argument(build_parser())) == []
    # Control arm: the walk finds an argument without one.
    parser = build_parser()
    parser.add_argument("--bare")
    assert list(_every_argument(parser)) == ["tidings --bare"]


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (("token", "--user", "u"), {}, "tidings token needs TIDINGS_SECRET"),
        (("token", "--user", "u", "--ttl", "-5"), {"TIDINGS_SECRET": SECRET}, "more than 0"),
        (("serve",), {"TIDINGS_SECRET": "short"}, "tidings init writes a strong one"),
        (("serve",), {"TIDINGS_REDIS_URL": "http://redis"}, "must look like redis://"),
        (("serve",), {"TIDINGS_REDIS_URL": "redis://h:port/0"}, "port is not a number"),
        (("serve",), {"TIDINGS_PORT": "99999"}, "TIDINGS_PORT is not valid"),
        (("emit", "a?b", "extracting"), {}, "JOB 'a?b' may have only letters"),
        (("emit", "j", "s", "--url", "http://127.0.0.1:9"), {}, "start it with tidings serve"),
        (("watch", "j", "--url", "http://127.0.0.1:9"), {}, "start it with tidings serve"),
        (
            ("emit", "j", "s", "5"),
            {"TIDINGS_REDIS_URL": "redis://127.0.0.1:9/0"},
            "Redis at 127.0.0.1:9 did not answer",
        ),
    ],
)
def test_every_error_is_one_line_naming_what_to_change(
    args: tuple[str, ...], env: dict[str, str], expected: str
) -> None:
    result = tidings(*args, env=env)
    assert result.returncode in (1, 2), result
    errors = [line for line in result.stderr.splitlines() if line.startswith("tidings: error:")]
    assert len(errors) == 1 and expected in errors[0], result.stderr
    assert "Traceback" not in result.stderr and "pydantic" not in result.stderr


def test_a_busy_port_is_one_line() -> None:
    with server_process() as node:
        busy = tidings("serve", "--port", str(node.port))
    assert busy.returncode == 1
    assert busy.stderr.strip().splitlines()[-1] == (
        f"tidings: error: 127.0.0.1:{node.port} is already in use (another tidings serve?): "
        "stop it, or pick another port with --port or TIDINGS_PORT"
    )
    assert "Traceback" not in busy.stderr


async def test_watch_says_what_is_wrong_with_the_token() -> None:
    with server_process({"TIDINGS_SECRET": SECRET}) as node:
        other = jwt.encode({"sub": "u", "exp": 2**31}, "x" * 40, algorithm="HS256")
        expired = jwt.encode({"sub": "u", "exp": 1}, SECRET, algorithm="HS256")
        for token, expected in [
            (None, "The server requires a token"),
            ("garbage", "is not a token"),
            (other, "signed with another secret than this shell's TIDINGS_SECRET"),
            (expired, "expired"),
        ]:
            args = ["watch", "j", "--url", node.url, *(["--token", token] if token else [])]
            result = tidings(*args, env={"TIDINGS_SECRET": SECRET})
            assert result.returncode == 1
            assert result.stderr.startswith("tidings: error: ") and expected in result.stderr
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_emit_hints_at_a_near_catalog_step() -> None:
    assert step_hint("duplcate_chek") == (
        "'duplcate_chek' is not a catalog step; did you mean 'duplicate_check'? (sent as it is)"
    )
    assert step_hint("duplicate_check") is None
    assert step_hint("validating_iban_checksums") is None  # a step of the worker's own


def test_init_writes_a_working_env_and_never_overwrites(tmp_path: Path) -> None:
    made = subprocess.run(
        [sys.executable, "-m", "tidings", "init"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    env_file = tmp_path / ".env"
    first = env_file.read_text()
    values = dict(
        line.split("=", 1) for line in first.splitlines() if line and not line.startswith("#")
    )
    assert set(values) == {"TIDINGS_SECRET", "TIDINGS_API_KEY"}
    assert len(values["TIDINGS_SECRET"]) >= 64  # token_urlsafe(48)
    assert env_file.stat().st_mode & 0o077 == 0
    again = subprocess.run(
        [sys.executable, "-m", "tidings", "init"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert again.returncode == 1 and "already exists" in again.stderr
    assert env_file.read_text() == first
    # tidings token in that directory signs with the secret from the file.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    minted = subprocess.run(
        [sys.executable, "-m", "tidings", "token", "--user", "alice"],
        cwd=tmp_path,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    claims = jwt.decode(minted.stdout.strip(), values["TIDINGS_SECRET"], algorithms=["HS256"])
    assert claims["sub"] == "alice"


def test_settings_read_env_files_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydantic import ValidationError
    from tidings import Settings
    from tidings.cli.main import settings_error

    for name in [name for name in os.environ if name.startswith("TIDINGS_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"TIDINGS_SECRET={SECRET}\nTIDINGS_PORT=9001\n")
    settings = Settings()
    assert settings.secret is not None and settings.secret.get_secret_value() == SECRET
    assert settings.port == 9001
    monkeypatch.setenv("TIDINGS_PORT", "9002")
    assert Settings().port == 9002
    monkeypatch.setenv("TIDINGS_SECRET", "")
    assert Settings().secret is None  # empty is unset, not a short secret
    for url in ("redis://127.0.0.1:6379/0", "rediss://user:pw@redis.example:6380/2", "unix:///s"):
        assert Settings(redis_url=url).redis_url == url
    for url, reason in [
        ("http://redis:6379/0", "it starts with 'http'"),
        ("redis://redis:port/0", "its port is not a number"),
        ("redis:///0", "it names no host"),
        ("redis://redis:6379/zero", "the database after the / must be a number"),
    ]:
        with pytest.raises(ValidationError) as caught:
            Settings(redis_url=url)
        message = settings_error(caught.value)
        assert message.startswith("TIDINGS_REDIS_URL must look like redis://") and reason in message


def test_reload_knows_an_installed_copy_from_a_checkout() -> None:
    import sysconfig

    from tidings.cli.serve import _installed

    site = Path(sysconfig.get_paths()["purelib"])
    assert _installed(site / "tidings" / "web" / "static")
    assert not _installed(ROOT / "server" / "web" / "static")
