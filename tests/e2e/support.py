"""What every Chromium test shares: the real parts it needs, a fresh ``tidings serve`` logging
to the artifacts, and one way to run a playwright-core script against it."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, ServerProcess, server_process

ARTIFACTS = ROOT / "test-artifacts" / "e2e"
CHROMIUM = Path("/usr/bin/chromium")
PLAYWRIGHT = ROOT / "client_js" / "node_modules" / "playwright-core"
API_KEY = "e2e-api-key-" + secrets.token_hex(8)
SECRET = "e2e-secret-" + secrets.token_hex(16)
#: Seconds a script may run; its own watchdog (where it has one) fires first.
SCRIPT_TIMEOUT = 110


def start_server(request: pytest.FixtureRequest, **env: str) -> Iterator[ServerProcess]:
    """A fresh ``tidings serve`` (embedded store) logging to the artifacts, once the browser
    tools are here (or a clear sentence about the missing one)."""
    assert shutil.which("node"), "node is not installed"
    assert CHROMIUM.exists(), f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)"
    assert PLAYWRIGHT.is_dir(), "playwright-core is missing: npm ci --prefix client_js"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / f"{request.node.name}-server.log"
    log.unlink(missing_ok=True)
    with server_process({"TIDINGS_API_KEY": API_KEY, **env}, log=log) as node:
        yield node


def run_script(
    script: Path, node: ServerProcess, config: dict[str, Any], timeout: float = SCRIPT_TIMEOUT
) -> str:
    """Run a scenario script against ``node``; fail with everything it printed."""
    config = {"url": node.url, "artifacts": str(ARTIFACTS), "apiKey": API_KEY, **config}
    result = subprocess.run(
        ["node", str(script), json.dumps(config)],
        cwd=ROOT,
        env={**os.environ, "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = result.stdout + result.stderr
    print(output)  # the steps with their times, and any figures (shown with -s or on failure)
    assert result.returncode == 0, f"the {config.get('scenario')} scenario failed:\n{output}"
    assert output.rstrip().endswith("ok"), output
    return output
