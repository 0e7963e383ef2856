"""The public surface of the messages package, and what it must not depend on."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import types
from pathlib import Path

import tidings.messages as messages
from tidings.messages import generate_friendly_status

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "messages"


def test_all_is_complete_and_exact() -> None:
    public = {
        name
        for name, value in vars(messages).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    assert set(messages.__all__) == public
    assert len(messages.__all__) == len(set(messages.__all__))
    assert sorted(messages.__all__) == messages.__all__


async def test_the_api_the_server_codes_against() -> None:
    from tidings.messages import LLMConfig, MessageWriter, generate_friendly_status, register_step

    assert callable(generate_friendly_status) and callable(register_step)
    config = LLMConfig(api_key="k", base_url=None, model="llama-3.1-8b-instant", timeout=1.5)
    writer = MessageWriter(llm=config, redis=None)
    assert writer.llm_enabled
    assert writer.write("duplicate_check", {"filename": "a.csv"}) == (
        "Checking if I've seen a.csv before..."
    )
    await writer.aclose()
    async with MessageWriter() as plain:
        assert not plain.llm_enabled


def test_messages_imports_nothing_from_server() -> None:
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            # relative imports only: the package is mapped to tidings.messages at install time
            assert not any(name.split(".")[0] in {"server", "tidings"} for name in names), path


def test_importing_messages_loads_neither_server_nor_the_llm_sdks() -> None:
    code = (
        "import sys, tidings.messages as messages\n"
        "messages.generate_friendly_status('duplicate_check', {'filename': 'a.csv'})\n"
        "heavy = ('tidings.web', 'tidings.realtime', 'aiohttp.web', 'groq', 'instructor')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.stdout.strip() == "[]"


def test_the_benchmark_runs() -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error", str(ROOT / "bench" / "bench_messages.py"), "--seconds",
         "0.001"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=120,
    )  # fmt: skip
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["case", "calls/s", "us/call", "x", "str.format"]
    assert any(line.startswith("baseline: str.format") for line in lines)
    assert len(lines) == 9


def readme_rows() -> list[tuple[str, dict[str, object] | None, str]]:
    """The example rows of messages/README.md's catalog table: (step, context, sentence)."""
    rows = []
    for line in (PACKAGE / "README.md").read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or not line.startswith("| `"):
            continue
        step = cells[0].split("`")[1]
        context = None if cells[2] == "—" else json.loads(cells[2].strip("`"))
        rows.append((step, context, cells[3]))
    return rows


def test_the_readme_catalog_is_what_the_code_says() -> None:
    rows = readme_rows()
    assert len(rows) > 30
    for step, context, sentence in rows:
        assert generate_friendly_status(step, context) == sentence, step
    assert {step for step, _, _ in rows} >= {"duplicate_check", "error", "complete", "queued"}
