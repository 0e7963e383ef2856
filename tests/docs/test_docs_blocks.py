"""The README and every document in docs/ work as written: each shell and Python block runs, in
order, in an empty directory (``tests/docs/runner.py`` says how, and how a block that is not
meant to run says so). The report of every block is printed (``-s``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.runner import BlockFailed, Session, blocks, run_document
from tests.support import ROOT, free_port

DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("document", DOCUMENTS, ids=[path.name for path in DOCUMENTS])
def test_every_block_of_the_document_runs(document: Path, redis_url: str, tmp_path: Path) -> None:
    directory = tmp_path / "work"
    directory.mkdir()
    session = Session(directory, free_port(), redis_url)
    try:
        report = run_document(document, session, str(document.relative_to(ROOT)))
    except BlockFailed:
        print("\n".join(session.log))
        raise
    print("\n" + "\n".join(report))


def test_a_failing_block_fails_the_test(redis_url: str, tmp_path: Path) -> None:
    """Control arm: the runner would catch a block that fails, a skip without a reason and a
    setup block that does more than install, and runs what is not marked."""
    directory = tmp_path / "work"
    directory.mkdir()
    for text, expected in [
        ("```bash\ntrue\nfalse\ntrue\n```\n", "failed with 1"),
        ("```python\nraise SystemExit(3)\n```\n", "failed with 3"),
        ("<!-- docs-test: skip -->\n```bash\ntrue\n```\n", "a skip must say why"),
        ("<!-- docs-test: setup -->\n```bash\npip install .\nrm -rf x\n```\n", "more than"),
        ("<!-- docs-test: background -->\n```bash\nsleep 60\n```\n", "did not answer"),
    ]:
        document = tmp_path / "doc.md"
        document.write_text(text)
        with pytest.raises(BlockFailed, match=expected):
            run_document(document, Session(directory, free_port(), redis_url))
    exported = tmp_path / "exports.md"
    exported.write_text('```bash\nexport WORD=kept\n```\n\n```sh\ntest "$WORD" = kept\n```\n')
    assert len(run_document(exported, Session(directory, free_port(), redis_url))) == 2


def test_the_documents_have_blocks_to_run() -> None:
    readme = [block for block in blocks(ROOT / "README.md") if block.runnable]
    assert sum(1 for block in readme if not block.marker) >= 4
