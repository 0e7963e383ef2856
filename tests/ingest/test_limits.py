"""What one parse may hold, and the dialect told without regular expressions (issue 14).

Small ``Limits`` stand in for the ones a 100 MB upload limit gives, so each file is tiny; each
refusal has a control arm: the same shape of file just within the limit is read.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tidings.ingest import BadFile, Limits, ParsePool
from tidings.ingest.formats import (
    DEFAULT_LIMITS,
    Analysis,
    _sniff,
    analyse,
    detect_kind,
    texts_of,
)
from tidings.ingest.hashing import Fingerprinter
from tidings.ingest.pool import Overrun

SMALL = Limits(line=100, document=1000, containers=20)


def read(tmp_path: Path, name: str, data: bytes, limits: Limits = SMALL) -> Analysis:
    path = tmp_path / "stored.upload"
    path.write_bytes(data)
    printer = Fingerprinter()
    printer.feed(data)
    return analyse(path, name, printer.finish(), limits)


def test_limits_scale_with_the_upload_limit() -> None:
    assert Limits(line=1 << 20, document=10 * (1 << 20), containers=655_360) == DEFAULT_LIMITS
    assert Limits.for_upload(1000) == Limits(line=65_536, document=65_536, containers=4096)
    assert Limits.for_upload(10 << 30).line == 4 << 20  # a line never needs more


def test_a_csv_line_past_the_limit_is_refused(tmp_path: Path) -> None:
    within = (b"1," * 49 + b"1\n") * 2  # 99 characters and a line break: 100 each
    assert read(tmp_path, "ok.csv", within).columns == 50
    with pytest.raises(BadFile, match="has a line longer than 100 characters"):
        read(tmp_path, "long.csv", (b"1," * 50 + b"1\n") * 2)


def test_a_csv_record_carried_on_by_quoted_line_breaks_is_refused(tmp_path: Path) -> None:
    record = b'1,"' + b"x\n" * 60 + b'"\n'  # short lines, one record of 125 characters
    with pytest.raises(BadFile, match="has a record longer than 100 characters"):
        read(tmp_path, "carried.csv", b"a,b\n" + record)
    assert read(tmp_path, "ok.csv", b"a,b\n" + b'1,"' + b"x\n" * 40 + b'"\n').records == 1


def test_a_json_document_past_the_limits_is_refused(tmp_path: Path) -> None:
    assert read(tmp_path, "ok.json", b"[" + b"{}," * 18 + b"{}]").records == 19  # 20 in all
    with pytest.raises(BadFile, match="holds more than 20 JSON objects and arrays"):
        read(tmp_path, "many.json", b"[" + b"{}," * 20 + b"{}]")
    with pytest.raises(BadFile, match="is larger than 1,000 bytes, the largest JSON document"):
        read(tmp_path, "big.json", b'["' + b"x" * 1000 + b'"]')


def test_a_large_json_file_of_lines_is_read_line_by_line(tmp_path: Path) -> None:
    lines = b"".join(b'{"n": %d}\n' % index for index in range(200))  # 2 KB, 200 objects
    analysis = read(tmp_path, "events.json", lines)
    assert (analysis.records, analysis.details["shape"]) == (200, "lines")
    with pytest.raises(BadFile, match="has a line longer than 100 characters"):
        read(tmp_path, "events.jsonl", b'{"n": "' + b"x" * 100 + b'"}\n')


def test_text_lines_are_bounded_and_searched_in_pieces(tmp_path: Path) -> None:
    with pytest.raises(BadFile, match="has a line longer than 100 characters"):
        read(tmp_path, "notes.txt", b"word " * 30)
    path = tmp_path / "notes.txt"
    path.write_bytes(b"word " * 30)
    assert [len(piece) for piece in texts_of(path, "text", SMALL)] == [100, 50]


@pytest.mark.parametrize(
    ("sample", "delimiter", "quotechar"),
    [
        ("a,b,c\n1,2,3\n4,5,6\n", ",", '"'),
        ("a;b\n1,5;2\n3,5;4\n", ";", '"'),
        ("a\tb\tc\n1\t2\t3\n", "\t", '"'),
        ("a|b\n'x|y'|2\n'z|w'|3\n", "|", "'"),
        ('name,note\nann,"hi, there"\nbob,"a, b, c"\n', ",", '"'),
    ],
)
def test_the_dialect_is_counted(sample: str, delimiter: str, quotechar: str) -> None:
    found = _sniff(sample)
    assert found is not None and (found.delimiter, found.quotechar) == (delimiter, quotechar)


def test_the_regex_sniffer_bomb_is_one_line_of_text() -> None:
    bomb = ',"' * 30_000  # csv.Sniffer needs tens of seconds for this
    found = _sniff(bomb)
    assert found is not None and found.delimiter == ","
    assert detect_kind("upload", bomb.encode()) == "text"  # one row is no table
    assert _sniff("just some words\nand more words\n") is None


@pytest.mark.parametrize(
    ("data", "has_header"),
    [
        (b"id,amount\n1,2.50\n2,3.75\n", True),  # labels over numbers
        (b"1,2.50\n2,3.75\n3,1.00\n", False),  # numbers all the way down
        (b"code,x\nAB,x1\nCD,x2\n", True),  # distinct labels
        (b"x,x\n1,2\n3,4\n", True),  # repeated labels, over numbers
        (b"ab,ab\ncd,ef\ngh,ij\n", False),  # a first row like the others
    ],
)
def test_the_header_is_told_without_the_sniffer(
    tmp_path: Path, data: bytes, has_header: bool
) -> None:
    assert read(tmp_path, "t.csv", data, DEFAULT_LIMITS).details["has_header"] is has_header


def _spin(seconds: float) -> None:
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


async def test_a_call_past_its_deadline_is_stopped_and_the_pool_recovers() -> None:
    pool = ParsePool(1)
    try:
        await pool.start()
        loop = asyncio.get_running_loop()
        with pytest.raises(Overrun):
            await pool.run(loop.time() + 0.2, _spin, 30.0)  # killed, not waited for
        assert pool.restarts == 1
        assert await pool.run(loop.time() + 30, sum, [1, 2, 3]) == 6  # the control arm
    finally:
        await pool.aclose()
