"""Numbers, sizes, durations, articles, and user text made safe to show."""

from __future__ import annotations

import pytest
from tidings.messages import generate_friendly_status
from tidings.messages.humanize import (
    article,
    clean_filename,
    clean_text,
    count_phrase,
    format_duration,
    format_number,
    format_percent,
    format_size,
    plural,
    to_count,
    to_ratio,
)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        (0, "0 bytes"),
        (1, "1 byte"),
        (999, "999 bytes"),
        (1000, "1 KB"),
        (1500, "1.5 KB"),
        (3_200_000, "3.2 MB"),
        (9_960_000, "10 MB"),
        (45_400_000, "45 MB"),
        (999_999, "1 MB"),
        (1_234_567_890, "1.2 GB"),
        (10**18, "1,000 PB"),
    ],
)
def test_format_size(size: int, expected: str) -> None:
    assert format_size(size) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "a few seconds"),
        (9.9, "a few seconds"),
        (12, "about 10 seconds"),
        (41, "about 40 seconds"),
        (60, "about a minute"),
        (120, "about 2 minutes"),
        (125, "about 2 minutes"),
        (3000, "about 50 minutes"),
        (3600, "about an hour"),
        (7200, "about 2 hours"),
        (86400, "about a day"),
        (86400 * 400, "about 400 days"),
    ],
)
def test_format_duration(seconds: float, expected: str) -> None:
    assert format_duration(seconds) == expected


@pytest.mark.parametrize(
    ("ratio", "expected"),
    [(0.87, "87%"), (0.0, "0%"), (1.0, "100%"), (0.999, "99%"), (0.001, "less than 1%")],
)
def test_format_percent(ratio: float, expected: str) -> None:
    assert format_percent(ratio) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(0.87, 0.87), (87, 0.87), ("87", 0.87), (1, 1.0), (-0.1, None), (101, None), ("x", None)],
)
def test_to_ratio(value: object, expected: float | None) -> None:
    assert to_ratio(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0),
        (1204, 1204),
        (12.0, 12),
        ("1,204", 1204),
        (" 7 ", 7),
        (12.5, None),
        (-1, None),
        (True, None),
        (None, None),
        (float("nan"), None),
        ("1e400", None),
        ("9" * 40, None),
    ],
)
def test_to_count(value: object, expected: int | None) -> None:
    assert to_count(value) == expected


def test_numbers_and_counts() -> None:
    assert format_number(1204) == "1,204"
    assert format_number(3.25) == "3.2"
    assert format_number(3.0) == "3"
    assert count_phrase(0, "row") == "no rows"
    assert count_phrase(1, "row") == "1 row"
    assert count_phrase(2, "entry") == "2 entries"
    assert count_phrase(2, "match") == "2 matches"
    assert count_phrase(3, "person", "people") == "3 people"
    assert plural("day") == "days"
    assert plural("analysis") == "analyses"


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("invoice", "an"),
        ("bank statement", "a"),
        ("hour", "an"),
        ("honest mistake", "an"),
        ("user", "a"),
        ("unicorn", "a"),
        ("umbrella", "an"),
        ("European bank", "a"),
        ("one-off", "a"),
        ("SQL dump", "an"),
        ("FAQ", "an"),
        ("URL", "a"),
        ("CSV export", "a"),
        ("8-K filing", "an"),
        ("11-page report", "an"),
        ("2-page report", "a"),
        ("18th-century ledger", "an"),
        ("11,000-row export", "an"),
        ("110-row export", "a"),
        ("800 rows", "an"),
        ("", "a"),
    ],
)
def test_article(phrase: str, expected: str) -> None:
    assert article(phrase) == expected


HOSTILE = [
    # bidi override: "invoice_exe.csv" shown reversed would hide the real extension
    ("invoice\u202eexe.csv", "invoiceexe.csv"),
    ("a\u2066b\u2069c\u200b\u200d\ufeff.csv", "abc.csv"),
    ("tab\tand\nnewline\r.csv", "tab and newline .csv"),
    ("nul\x00bell\x07esc\x1b[31m.csv", "nulbellesc[31m.csv"),
    ("<script>alert(1)<script>.csv", "\u2039script\u203aalert(1)\u2039script\u203a.csv"),
    # a separator inside a tag is markup, not a folder: the name stays whole
    ("<b>bold<\\b>.csv", "\u2039b\u203abold\u2039\\b\u203a.csv"),
    ("</script><img src=x onerror=alert(1)>.csv", "\u2039/script\u203a\u2039img src=x"),
    ("docs\\<b>x</b>.csv", "\u2039b\u203ax\u2039/b\u203a.csv"),  # a backslash is a separator too
    ("{filename}.csv", "(filename).csv"),
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\ann\\Desktop\\q3.csv", "q3.csv"),
    ("   spaced    out   .csv  ", "spaced out .csv"),
    ("\u202e\u202e\u202e", None),
    ("", None),
]


@pytest.mark.parametrize(("raw", "shown"), HOSTILE)
def test_hostile_filenames_are_neutralised(raw: str, shown: str | None) -> None:
    cleaned = clean_filename(raw)
    if shown is None:
        assert cleaned is None
        assert generate_friendly_status("duplicate_check", {"filename": raw}) == (
            "Checking if I've seen this file before..."
        )
        return
    assert cleaned is not None and cleaned.startswith(shown)
    assert cleaned.isprintable() and "<" not in cleaned and ">" not in cleaned
    sentence = generate_friendly_status("duplicate_check", {"filename": raw})
    assert sentence == f"Checking if I've seen {cleaned} before..."


def test_a_very_long_filename_is_shortened_in_the_middle_keeping_its_extension() -> None:
    name = "quarterly-report-" + "x" * 300 + "-final-v2.xlsx"
    cleaned = clean_filename(name)
    assert cleaned is not None
    assert len(cleaned) == 40
    assert cleaned.startswith("quarterly-report-") and cleaned.endswith("final-v2.xlsx")
    assert "\u2026" in cleaned
    short = "short.csv"
    assert clean_filename(short) is short  # the common case is not copied


def test_a_huge_hostile_value_stays_small_and_fast() -> None:
    huge = ("\u202e<i>" + "A" * 1000) * 1000
    sentence = generate_friendly_status("duplicate_check", {"filename": huge})
    assert len(sentence) < 100 and "<" not in sentence and "\u202e" not in sentence


def test_clean_text_shortens_on_a_word_boundary() -> None:
    text = clean_text("the quick brown fox jumps over the lazy dog " * 5, 30)
    assert text == "the quick brown fox jumps\u2026"
    assert clean_text(42) is None
    assert clean_text("  \n ") is None
