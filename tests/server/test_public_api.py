"""The public surface: ``__all__`` is exact, and a worker's import stays light."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import pytest
import tidings
import tidings.web

#: What a worker must never pay for: the web server, metrics, the upload pipeline, the LLM SDKs.
HEAVY = (
    "aiohttp.web",
    "prometheus_client",
    "socketio",
    "engineio",
    "tidings.web",
    "tidings.realtime",
    "tidings.ingest",
    "groq",
    "instructor",
)

#: What a worker pays for only when it connects (``from_url``) or validates its first update.
DEFERRED = ("pydantic", "pydantic_settings", "redis")


@pytest.mark.parametrize("package", [tidings, tidings.web], ids=lambda p: p.__name__)
def test_all_is_complete(package: types.ModuleType) -> None:
    for name in package.__all__:  # every name resolves, the lazy ones (PEP 562) included
        getattr(package, name)
    public = {
        name
        for name, value in vars(package).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(package.__all__) == public
    assert sorted(package.__all__) == package.__all__


def worker_import(statement: str) -> dict[str, object]:
    code = (
        "import sys\n"
        f"{statement}\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        f"deferred = [m for m in {DEFERRED!r} if m in sys.modules]\n"
        "status = open('/proc/self/status').read().split('VmHWM:')[1]\n"
        "kb = int(status.split()[0])\n"
        "report = {'heavy': heavy, 'deferred': deferred, 'modules': len(sys.modules), 'kb': kb}\n"
        "print(__import__('json').dumps(report))\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_the_worker_api_loads_none_of_the_server() -> None:
    light = worker_import(
        "from tidings import ProgressEmitter, SyncProgressEmitter, JobCancelled, Event"
    )
    assert light["heavy"] == []
    assert light["deferred"] == []
    # Peak RSS is a count, not a clock. It was 42 MB while the import loaded pydantic,
    # pydantic-settings and redis; without them it is about 23 MB (the interpreter, asyncio with
    # ssl, tenacity). The pin (the goal was 30 MB) keeps it from growing back towards the 65 MB
    # of the whole server.
    assert light["kb"] <= 26 * 1024, light


def test_a_worker_on_redis_loads_none_of_the_server_either() -> None:
    """The merge script publishes, so an emitter for many nodes needs no Socket.IO manager."""
    used = worker_import(
        "import asyncio\n"
        "from tidings import ProgressEmitter\n"
        "async def main():\n"
        "    await ProgressEmitter.from_url('redis://127.0.0.1:9/0').aclose()\n"
        "asyncio.run(main())"
    )
    assert used["heavy"] == []
    # Control arm for the light import: the same probe sees redis once the worker connects.
    assert used["deferred"] == ["pydantic", "pydantic_settings", "redis"], used


def test_the_pin_would_catch_a_heavy_import() -> None:
    """Control arm: the same probe reports the web layer when it is imported."""
    heavy = worker_import("import tidings.web")
    assert "aiohttp.web" in heavy["heavy"] and "tidings.web" in heavy["heavy"]


def test_no_package_named_server_or_messages_is_installed() -> None:
    for name in ("server", "messages", "ingest"):
        result = subprocess.run(
            [sys.executable, "-c", f"import {name}"], capture_output=True, cwd="/", timeout=60
        )
        assert result.returncode != 0, name
