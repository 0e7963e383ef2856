"""Templates and register_step: how an application extends the catalog."""

from __future__ import annotations

import pytest
from tidings.messages import TemplateError, generate_friendly_status, register_step
from tidings.messages.context import Context, render_value, template_keys
from tidings.messages.template import parse_template


def test_register_a_new_step() -> None:
    assert generate_friendly_status("ocr_pass") == "Working on OCR pass..."  # control
    register_step("ocr_pass", "Reading the text in {filename}...", default="Reading the text...")
    assert generate_friendly_status("ocr_pass", {"filename": "scan.pdf"}) == (
        "Reading the text in scan.pdf..."
    )
    assert generate_friendly_status("ocr_pass") == "Reading the text..."
    assert generate_friendly_status("ocr_pass", {"filename": None}) == "Reading the text..."


def test_without_a_default_a_missing_value_gives_the_humane_sentence() -> None:
    register_step("ocr_pass", "Reading the text in {filename}...")
    assert generate_friendly_status("ocr_pass") == "Working on OCR pass..."


def test_a_registered_sentence_overrides_a_builtin_one() -> None:
    register_step("duplicate_check", "Have I met {filename} before?", default="Seen it before?")
    assert generate_friendly_status("duplicate_check", {"filename": "a.csv"}) == (
        "Have I met a.csv before?"
    )
    assert generate_friendly_status("duplicate_check") == "Seen it before?"


def test_a_registered_step_is_found_by_its_normalized_name_too() -> None:
    register_step("OCR-Pass", "Reading the text...")
    assert generate_friendly_status("ocr_pass") == "Reading the text..."
    assert generate_friendly_status("OCR-Pass") == "Reading the text..."


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({"rows": 0}, "No rows checked in a.csv"),
        ({"rows": 1}, "1 row checked in a.csv"),
        ({"rows": 1204}, "1,204 rows checked in a.csv"),
    ],
)
def test_counted_nouns(context: dict[str, object], expected: str) -> None:
    register_step("row_check", "{rows:row} checked in {filename}")
    assert generate_friendly_status("row_check", {**context, "filename": "a.csv"}) == expected


def test_irregular_plurals_and_articles() -> None:
    register_step("people", "Found {people:person/people} in {kind:a}")
    assert generate_friendly_status("people", {"people": 1, "kind": "invoice"}) == (
        "Found 1 person in an invoice"
    )
    assert generate_friendly_status("people", {"people": 3, "kind": "ledger"}) == (
        "Found 3 people in a ledger"
    )


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("filename", "/srv/in/a.csv", "a.csv"),
        ("upload_path", "C:\\in\\b.csv", "b.csv"),
        ("total_bytes", 3_200_000, "3.2 MB"),
        ("size", "1000", "1 KB"),
        ("eta_seconds", 125, "about 2 minutes"),
        ("similarity_score", 0.87, "87%"),
        ("match_percent", 42, "42%"),
        ("rows", 1204, "1,204"),
        ("rows", "1204", "1204"),
        ("amount", 12.5, "12.5"),
        ("fiscal_year", 2024, "2024"),
        ("bank", "Chase", "Chase"),
        ("bank", "<b>x</b>", "\u2039b\u203ax\u2039/b\u203a"),
        ("job_id", "upload-7f3a", None),
        ("file_hash", "ab12", None),
        ("api_key", "secret", None),
        ("done", True, None),
        ("rows", None, None),
        ("rows", [1], None),
        ("total_bytes", -5, None),
    ],
)
def test_render_value(key: str, value: object, shown: str | None) -> None:
    assert render_value(key, value) == shown


def test_template_keys_are_sorted_plain_and_showable() -> None:
    context = Context(
        {"rows": 3, "filename": "a.csv", "job_id": "x", "bad key": 1, "none": None, 7: 1}
    )
    assert template_keys(context) == ("filename", "rows")
    many = Context({f"k{i:02}": i for i in range(20)})
    assert len(template_keys(many)) == 8


@pytest.mark.parametrize(
    "source",
    [
        "",
        "   ",
        "Stray { brace",
        "Stray } brace",
        "{}",
        "{0}",
        "{filename.__class__}",
        "{filename[0]}",
        "{filename!r}",
        "{rows:}",
        "{rows:row/}",
        "{rows:<10}",
        "{{doubled}}",
        "line\nbreak",
        "bidi \u202e override",
        "x" * 301,
    ],
)
def test_malformed_templates_are_refused(source: str) -> None:
    with pytest.raises(TemplateError):
        register_step("some_step", source)
    assert generate_friendly_status("some_step") == "Working on some step..."


def test_placeholders_must_be_allowed_when_keys_are_given() -> None:
    assert parse_template("In {filename}", allowed_keys=("filename",)).keys == {"filename"}
    with pytest.raises(TemplateError, match="account_number"):
        parse_template("In {account_number}", allowed_keys=("filename",))


def test_register_step_refuses_bad_steps_and_defaults() -> None:
    with pytest.raises(TemplateError):
        register_step("", "Hello")
    with pytest.raises(TemplateError):
        register_step("x" * 129, "Hello")
    with pytest.raises(TemplateError):
        register_step("ocr_pass", "Reading {filename}", default="Reading {filename}")
    with pytest.raises(TemplateError):
        register_step(42, "Hello")  # type: ignore[arg-type]


def test_a_template_never_reaches_into_a_value() -> None:
    """Templates are parsed, not given to str.format: no attribute or item access."""

    class Sneaky:
        secret = "leaked"

        def __str__(self) -> str:
            return "leaked"

    register_step("sneaky", "Value: {thing}", default="No value")
    assert generate_friendly_status("sneaky", {"thing": Sneaky()}) == "No value"
