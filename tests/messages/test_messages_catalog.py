"""Table tests of the catalog: every built-in step, with and without its context."""

from __future__ import annotations

import re
from collections.abc import Mapping

import pytest
from tidings.messages import BUILTIN_STEPS, generate_friendly_status, register_step

# (step, context, the exact sentence)
CASES: list[tuple[str, Mapping[str, object] | None, str]] = [
    # the wording, with no context
    ("initializing_streaming", None, "Getting ready to read your file..."),
    ("duplicate_check", None, "Checking if I've seen this file before..."),
    ("field_detection", None, "Analyzing the structure of your data..."),
    ("platform_detection", None, "Figuring out where this data came from..."),
    ("document_classification", None, "Understanding what type of document this is..."),
    ("starting_transaction", None, "Setting up secure storage for your data..."),
    ("storing", None, "Saving your file details..."),
    ("extracting", None, "Reading through your data..."),
    ("processing_decision", None, "Processing your request..."),
    ("duplicate_found", None, "Found an exact match - I've processed this before"),
    ("near_duplicate_found", None, "Found a similar file - let me compare them"),
    ("content_duplicate_found", None, "This data overlaps with something I already have"),
    ("delta_analysis_complete", None, "Spotted the differences in your data"),
    ("entity_resolution", None, "Matching entities across your data..."),
    ("classification", None, "Categorizing your transactions..."),
    ("enrichment", None, "Adding context to your data..."),
    ("complete", None, "Done! I've processed your file successfully"),
    ("error", None, "Oops, something went wrong"),
    # the context examples
    (
        "duplicate_check",
        {"filename": "expenses.csv"},
        "Checking if I've seen expenses.csv before...",
    ),
    (
        "delta_analysis_complete",
        {"new_rows": 42, "existing_rows": 156},
        "Spotted the differences: 42 new rows, 156 I already know",
    ),
    (
        "near_duplicate_found",
        {"similarity_score": 0.87},
        "Found a similar file (87% alike) - let me compare them",
    ),
    # one, zero, many
    (
        "delta_analysis_complete",
        {"new_rows": 1, "existing_rows": 1},
        "Spotted the differences: 1 new row, 1 I already know",
    ),
    (
        "delta_analysis_complete",
        {"new_rows": 1204, "existing_rows": 0},
        "Spotted the differences: 1,204 new rows, none I already know",
    ),
    (
        "delta_analysis_complete",
        {"new_rows": 0, "existing_rows": 156},
        "No differences - I already know all 156 rows",
    ),
    (
        "delta_analysis_complete",
        {"new_rows": 0, "existing_rows": 1},
        "No differences - I already know this one row",
    ),
    ("delta_analysis_complete", {"new_rows": 0, "existing_rows": 0}, "No new rows in your data"),
    ("delta_analysis_complete", {"new_rows": 0}, "No new rows in your data"),
    ("delta_analysis_complete", {"new_rows": 7}, "Spotted the differences: 7 new rows"),
    ("delta_analysis_complete", {"existing_rows": 1}, "I already know 1 row of this data"),
    ("delta_analysis_complete", {"existing_rows": 0}, "Spotted the differences in your data"),
    ("classification", {"transactions": 1}, "Categorizing 1 transaction..."),
    ("classification", {"transactions": 0}, "No transactions to categorize"),
    ("classification", {"transactions": 1204}, "Categorizing 1,204 transactions..."),
    ("entity_resolution", {"entities": 1}, "Matching 1 entity across your data..."),
    ("entity_resolution", {"entities": 57}, "Matching 57 entities across your data..."),
    ("enrichment", {"rows": 1}, "Adding context to 1 row..."),
    ("enrichment", {"rows": 2500000}, "Adding context to 2,500,000 rows..."),
    ("complete", {"rows": 0}, "Done! I've processed your file successfully (no rows)"),
    ("complete", {"rows": 1}, "Done! I've processed your file successfully (1 row)"),
    (
        "complete",
        {"filename": "expenses.csv", "rows": 1204},
        "Done! I've processed expenses.csv successfully (1,204 rows)",
    ),
    ("queued", None, "Waiting in line..."),
    ("queued", {"position": 1}, "You're next in line..."),
    ("queued", {"position": 2}, "Waiting in line - 1 file ahead of yours..."),
    ("queued", {"ahead": 12}, "Waiting in line - 12 files ahead of yours..."),
    ("queued", {"ahead": 0}, "You're next in line..."),
    (
        "content_duplicate_found",
        {"overlapping_rows": 1},
        ("This data overlaps with something I already have (1 row)"),
    ),
    ("field_detection", {"columns": 1}, "Analyzing the structure of your data (1 column)..."),
    (
        "field_detection",
        {"filename": "q3.csv", "columns": 12},
        "Analyzing the structure of q3.csv (12 columns)...",
    ),
    ("extracting", {"rows": 1}, "Reading through 1 row of your data..."),
    (
        "extracting",
        {"rows": 1204, "rows_done": 500},
        "Reading through your data: 500 of 1,204 rows...",
    ),
    ("storing", {"rows": 3, "filename": "a.csv"}, "Saving 3 rows from a.csv..."),
    ("storing", {"filename": "a.csv"}, "Saving the details of a.csv..."),
    # a / an
    (
        "document_classification",
        {"document_type": "invoice"},
        "Understanding what type of document this is - looks like an invoice",
    ),
    (
        "document_classification",
        {"document_type": "bank statement"},
        "Understanding what type of document this is - looks like a bank statement",
    ),
    (
        "document_classification",
        {"document_type": "SQL dump"},
        "Understanding what type of document this is - looks like an SQL dump",
    ),
    (
        "document_classification",
        {"document_type": "user manual"},
        "Understanding what type of document this is - looks like a user manual",
    ),
    (
        "document_classification",
        {"document_type": "hourly timesheet"},
        "Understanding what type of document this is - looks like an hourly timesheet",
    ),
    # percentages, sizes, durations
    (
        "near_duplicate_found",
        {"similarity_score": 87},
        "Found a similar file (87% alike) - let me compare them",
    ),
    (
        "near_duplicate_found",
        {"similarity_score": 0.996},
        "Found a similar file (99% alike) - let me compare them",
    ),
    (
        "near_duplicate_found",
        {"similarity_score": 0.9, "matched_filename": "/srv/uploads/old.csv"},
        "Found a similar file (old.csv, 90% alike) - let me compare them",
    ),
    ("uploading", None, "Uploading your file..."),
    (
        "uploading",
        {"filename": "big.csv", "bytes_sent": 1_234_567, "total_bytes": 3_400_000},
        "Uploading big.csv (1.2 MB of 3.4 MB)...",
    ),
    ("receiving", {"bytes_received": 1}, "Receiving your file (1 byte so far)..."),
    ("receiving", {"total_bytes": 999_999}, "Receiving your file (1 MB)..."),
    ("received", {"size": 3_200_000}, "Got your file (3.2 MB)"),
    ("received", {"filename": "a.csv"}, "Got a.csv"),
    ("reading", {"bytes_read": 0, "total_bytes": 10}, "Reading your file (0 bytes of 10 bytes)..."),
    ("hashing", None, "Taking your file's fingerprint..."),
    (
        "hashing",
        {"filename": "a.csv", "bytes_read": 5_000_000, "total_bytes": 50_000_000},
        "Taking a fingerprint of a.csv (5 MB of 50 MB)...",
    ),
    ("retrying", None, "Trying again..."),
    ("retrying", {"attempt": 2, "max_attempts": 3}, "Trying again (attempt 2 of 3)..."),
    ("retrying", {"retry_in_seconds": 120}, "Trying again in about 2 minutes..."),
    ("retrying", {"retry_in_seconds": 3}, "Trying again..."),
    # the job's life
    ("started", None, "Working on your file..."),
    ("processing", {"filename": "a.csv"}, "Working on a.csv..."),
    ("validating", None, "Making sure everything looks right..."),
    ("parsing", {"rows": 1}, "Making sense of 1 row..."),
    ("parsing", None, "Making sense of your file..."),
    ("cancelling", None, "Stopping as soon as I safely can..."),
    ("cancelled", None, "Cancelled - I stopped here"),
    ("cancelled", {"filename": "a.csv"}, "Cancelled - I stopped working on a.csv"),
    ("timeout", None, "This took too long, so I stopped"),
    ("finalizing", None, "Wrapping up..."),
    ("entity_extraction", None, "Picking out the details in your data..."),
    (
        "entity_extraction",
        {"entities": 1204},
        "Picking out the details in your data - 1,204 found so far...",
    ),
    ("initializing_streaming", {"filename": "a.csv"}, "Getting ready to read a.csv..."),
    (
        "duplicate_found",
        {"original_filename": "jan.csv"},
        "Found an exact match - I've processed this before as jan.csv",
    ),
    (
        "platform_detection",
        {"platform": "Stripe"},
        "Figuring out where this data came from - looks like Stripe",
    ),
    (
        "error",
        {"reason": "Row 12 has 3 columns, expected 5"},
        "Oops, something went wrong: Row 12 has 3 columns, expected 5",
    ),
    # numbers arriving as text (the CLI, JSON from other languages)
    (
        "delta_analysis_complete",
        {"new_rows": "42", "existing_rows": "1,560"},
        "Spotted the differences: 42 new rows, 1,560 I already know",
    ),
    # lookups forgive case and dashes
    ("Duplicate-Check", {"filename": "a.csv"}, "Checking if I've seen a.csv before..."),
    (" COMPLETE ", None, "Done! I've processed your file successfully"),
]


@pytest.mark.parametrize(("step", "context", "expected"), CASES)
def test_catalog_sentence(step: str, context: Mapping[str, object] | None, expected: str) -> None:
    assert generate_friendly_status(step, context) == expected


def test_every_builtin_step_is_in_the_table() -> None:
    tested = {step for step, _, _ in CASES}
    aliases = {
        "pending", "waiting", "starting", "running", "upload_complete", "uploaded",
        "fingerprinting", "validation", "retry", "cancel_requested", "canceled", "timed_out",
        "completed", "done", "finished", "success", "failed", "failure", "initializing",
        "saving", "extraction", "categorization", "enriching",
    }  # fmt: skip
    assert BUILTIN_STEPS - tested == aliases
    for alias in aliases:
        assert generate_friendly_status(alias)


WRONG_TYPES: list[object] = [
    None,
    True,
    -3,
    float("nan"),
    float("inf"),
    "many",
    "",
    [1, 2],
    {"nested": 1},
    b"bytes",
    object(),
    10**30,
]


@pytest.mark.parametrize("step", sorted(BUILTIN_STEPS))
@pytest.mark.parametrize("value", WRONG_TYPES, ids=repr)
def test_wrong_types_never_raise_and_never_leak(step: str, value: object) -> None:
    keys = (
        "filename", "new_rows", "existing_rows", "similarity_score", "rows", "rows_done",
        "columns", "transactions", "entities", "position", "ahead", "document_type",
        "platform", "reason", "bytes_sent", "total_bytes", "attempt", "max_attempts",
        "retry_in_seconds", "overlapping_rows", "original_filename", "matched_filename",
    )  # fmt: skip
    sentence = generate_friendly_status(step, dict.fromkeys(keys, value))
    assert_clean(sentence)
    # A wrong value reads like a missing one: the sentence falls back to its general form.
    if not isinstance(value, str):
        assert sentence == generate_friendly_status(step, None)


@pytest.mark.parametrize("step", sorted(BUILTIN_STEPS))
@pytest.mark.parametrize("value", [3.5, 0.5, 1e9, "12", "x" * 10_000], ids=repr)
def test_odd_but_typed_values_give_clean_sentences(step: str, value: object) -> None:
    keys = ("filename", "new_rows", "similarity_score", "rows", "retry_in_seconds", "reason")
    assert_clean(generate_friendly_status(step, dict.fromkeys(keys, value)))


def assert_clean(sentence: str) -> None:
    """What a person must never see: identifiers, braces, None, a traceback, control chars."""
    assert sentence and sentence == sentence.strip()
    assert "_" not in sentence, sentence
    assert not re.search(r"[{}<>]", sentence), sentence
    assert "None" not in sentence and "nan" not in sentence.lower().split()
    assert "Traceback" not in sentence and "object at 0x" not in sentence
    assert sentence.isprintable(), sentence
    assert sentence[0].isupper(), sentence


@pytest.mark.parametrize("step", sorted(BUILTIN_STEPS))
def test_every_sentence_is_clean(step: str) -> None:
    assert_clean(generate_friendly_status(step))
    assert_clean(generate_friendly_status(step, {"filename": "expenses.csv", "rows": 3}))


def test_unknown_context_keys_are_ignored() -> None:
    assert generate_friendly_status(
        "duplicate_check",
        {"filename": "a.csv", "colour": "blue", "_x": None, 3: 4},  # type: ignore[dict-item]
    ) == ("Checking if I've seen a.csv before...")


@pytest.mark.parametrize("context", ["not a mapping", 42, ["filename", "a.csv"], b"x"])
def test_a_context_that_is_not_a_mapping_is_ignored(context: object) -> None:
    sentence = generate_friendly_status("duplicate_check", context)  # type: ignore[arg-type]
    assert sentence == "Checking if I've seen this file before..."


def test_a_step_that_is_not_a_string_reads_plainly() -> None:
    assert generate_friendly_status(None) == "Working on it..."  # type: ignore[arg-type]
    assert generate_friendly_status(42) == "Working on it..."  # type: ignore[arg-type]


def test_an_error_reason_never_shows_a_traceback() -> None:
    traceback = (
        'Traceback (most recent call last):\n  File "/app/worker.py", line 3, in run\n'
        "ValueError: boom"
    )
    assert generate_friendly_status("error", {"reason": traceback}) == "Oops, something went wrong"
    sentence = generate_friendly_status("error", {"reason": "first line\nsecond line"})
    assert sentence == "Oops, something went wrong: first line"
    long_reason = "word " * 100
    shortened = generate_friendly_status("error", {"reason": long_reason})
    assert shortened.endswith("\u2026") and len(shortened) < 200


def test_a_built_in_sentence_written_before_is_the_same_sentence() -> None:
    """Built-in sentences are kept by step and context; equal contexts of other types (a flag
    and a count, a whole and a fractional number) still read as their own, whichever came
    first, and a step registered later wins over a kept sentence."""
    contexts: list[dict[str, object]] = [{"rows": True}, {"rows": 1}, {"rows": 1.0}]
    first = [generate_friendly_status("extracting", context) for context in contexts]
    again = [generate_friendly_status("extracting", context) for context in reversed(contexts)]
    assert again == list(reversed(first))
    # Control: the flag and the count are equal keys, yet read differently.
    assert {"rows": True} == {"rows": 1} and first[0] != first[1]
    register_step("extracting", "Reading {rows:row} here...")
    assert generate_friendly_status("extracting", {"rows": 1}) == "Reading 1 row here..."
