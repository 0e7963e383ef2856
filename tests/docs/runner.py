"""Run the shell and Python blocks of a Markdown document, in order, as a new user would.

Each document is one session: an empty directory, the ``tidings`` of this checkout's
environment on ``PATH``, nothing of ``TIDINGS_*`` from the machine. Shell blocks (``bash``,
``sh``, ``shell``, ``console``) run with ``set -eo pipefail`` and carry their exports on to the
next block, as one terminal would; Python blocks run as a file with ``python``.

A block says what it needs in an HTML comment on the line right above its fence, one of:

``<!-- docs-test: background -->``
    a long-running server (``tidings serve``, ``web.run_app``): it runs in the background, "the
    first terminal", and must answer ``/healthz`` on the session's port before the next block
    runs; the one running before it is stopped first (Ctrl+C), and the last at the end.
``<!-- docs-test: server -->``
    the block talks to a server: one ``tidings serve`` is started for it unless one runs.
``<!-- docs-test: env KEY=VALUE ... -->``
    runs with these variables set (what the text before the block tells the reader to set).
``<!-- docs-test: setup -->``
    installation (``pip install``, ``npm ci``, ``.ci/run``) that the test session has done
    already; the block may hold nothing else, which is checked.
``<!-- docs-test: skip REASON -->``
    not run, for the reason given (a fragment of a file another test runs, Docker, ...).

Nothing else is skipped: an unmarked block runs and must succeed. Two substitutions make a
block run here, and only these: the machine's Redis (``redis://127.0.0.1:6379/0``,
``redis://redis.internal:6379/0``) becomes the session's private redis-server, and port 8000
becomes a free port (``TIDINGS_PORT`` is set to it, so the defaults agree).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

SHELL = {"bash", "sh", "shell", "console"}
PYTHON = {"python", "py"}
MARKER = re.compile(r"<!--\s*docs-test:\s*(\w+)\s*(.*?)\s*-->")
FENCE = re.compile(r"^```(\S*)\s*$")
SETUP = re.compile(r"^(pip install|npm ci|bash \.ci/run)\b")
REDIS_URLS = ("redis://127.0.0.1:6379/0", "redis://redis.internal:6379/0")
BLOCK_TIMEOUT = 90.0


@dataclass
class Block:
    document: str
    line: int
    language: str
    code: str
    marker: str = ""
    argument: str = ""

    @property
    def where(self) -> str:
        return f"{self.document}:{self.line}"

    @property
    def runnable(self) -> bool:
        return self.language in SHELL | PYTHON


def blocks(path: Path, name: str | None = None) -> list[Block]:
    found = []
    lines = path.read_text(encoding="utf-8").splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        start = index
        end = start + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        marker = MARKER.fullmatch(lines[start - 1].strip()) if start else None
        found.append(
            Block(
                name or path.name,
                start + 1,
                opening.group(1).lower(),
                "\n".join(lines[start + 1 : end]) + "\n",
                marker.group(1) if marker else "",
                marker.group(2) if marker else "",
            )
        )
        index = end + 1
    return found


class BlockFailed(AssertionError):
    pass


@dataclass
class Session:
    directory: Path
    port: int
    redis_url: str
    log: list[str] = field(default_factory=list)
    _background: subprocess.Popen[bytes] | None = None
    _count: int = 0

    def __post_init__(self) -> None:
        self.state = self.directory.parent / f"{self.directory.name}-env.sh"
        self.state.write_text("")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
        self.env.pop("GROQ_API_KEY", None)
        self.env.update(
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{self.env.get('PATH', '')}",
            TIDINGS_HOST="127.0.0.1",
            TIDINGS_PORT=str(self.port),
            PYTHONDONTWRITEBYTECODE="1",
        )

    def substitute(self, code: str) -> str:
        for url in REDIS_URLS:
            code = code.replace(url, self.redis_url)
        return re.sub(r":8000\b", f":{self.port}", code)

    def run(self, block: Block) -> str:
        """Run one block; what happened to it, for the report. Raises BlockFailed."""
        if not block.runnable:
            return f"not run: a {block.language or 'plain'} block, not shell or Python"
        if block.marker == "skip":
            if not block.argument:
                raise BlockFailed(f"{block.where}: a skip must say why")
            return f"skipped: {block.argument}"
        if block.marker == "setup":
            commands = [
                line.split("#", 1)[0].strip()
                for line in block.code.splitlines()
                if line.split("#", 1)[0].strip()
            ]
            stray = [command for command in commands if not SETUP.match(command)]
            if stray:
                raise BlockFailed(f"{block.where}: a setup block runs more than installs: {stray}")
            return "setup: installed by the test session already"
        extra: dict[str, str] = {}
        if block.marker == "env":
            extra = dict(item.split("=", 1) for item in block.argument.split())
        elif block.marker == "server" and not self._serving():
            self._start(Block(block.document, block.line, "bash", "tidings serve\n"))
        elif block.marker == "background":
            self._start(block)
            return "ran in the background; it answered /healthz"
        elif block.marker:
            raise BlockFailed(f"{block.where}: unknown marker {block.marker!r}")
        self._foreground(block, extra)
        return "ran"

    def _script(self, block: Block, *, keep_exports: bool) -> str:
        self._count += 1
        code = self.substitute(block.code)
        if block.language in PYTHON:
            program = self.directory.parent / f"{self.directory.name}-block-{self._count}.py"
            program.write_text(code)
            code = f"python {program}\n"
        elif block.language == "console":
            code = "".join(line[2:] + "\n" for line in code.splitlines() if line.startswith("$ "))
        tail = f"export -p > {self.state}\n" if keep_exports else ""
        return f"set -eo pipefail\nsource {self.state}\n{code}{tail}"

    def _foreground(self, block: Block, extra: dict[str, str]) -> None:
        script = self._script(block, keep_exports=True)
        try:
            done = subprocess.run(
                ["bash", "-c", script],
                cwd=self.directory,
                env={**self.env, **extra},
                capture_output=True,
                text=True,
                timeout=BLOCK_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BlockFailed(f"{block.where}: still running after {BLOCK_TIMEOUT} s") from exc
        self.log.append(f"--- {block.where}\n{done.stdout}{done.stderr}")
        if done.returncode != 0:
            raise BlockFailed(
                f"{block.where} failed with {done.returncode}:\n{block.code}\n"
                f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
            )

    def _serving(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
                return b" 200 " in sock.recv(64)
        except OSError:
            return False

    def _start(self, block: Block) -> None:
        self.stop()
        output = self.directory.parent / f"{self.directory.name}-background-{block.line}.log"
        with open(output, "wb") as out:
            self._background = subprocess.Popen(
                ["bash", "-c", self._script(block, keep_exports=False)],
                cwd=self.directory,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, ended by its id
            )
        deadline = time.monotonic() + 30
        while not self._serving():
            if self._background.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise BlockFailed(
                    f"{block.where}: the server did not answer /healthz on {self.port}:\n"
                    f"{block.code}\n{output.read_text(errors='replace')}"
                )
            time.sleep(0.1)
        self.log.append(f"--- {block.where} (background, log in {output})")

    def stop(self) -> None:
        """Ctrl+C in the first terminal: SIGINT to the block's process group, by its id."""
        process, self._background = self._background, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
        while self._serving():  # the port is free before the next server takes it
            time.sleep(0.05)


def run_document(path: Path, session: Session, name: str | None = None) -> list[str]:
    """Every block of the document through ``session``; one report line per block."""
    report = []
    try:
        for block in blocks(path, name):
            started = time.monotonic()
            fate = session.run(block)
            took = time.monotonic() - started
            report.append(f"{block.where:<24} {block.language or 'plain':<8} {took:5.1f} s  {fate}")
    finally:
        session.stop()
    return report
