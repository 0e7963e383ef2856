"""The pure parts: fingerprints, similarity sketches, platforms, classification, entities."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest
from tidings.ingest.entities import EntityCollector
from tidings.ingest.formats import analyse
from tidings.ingest.hashing import Fingerprinter
from tidings.ingest.pipeline import count_delta, most_similar
from tidings.ingest.platforms import PLATFORMS, classify, detect_platform
from tidings.ingest.registry import Previous, SketchEntry
from tidings.ingest.similarity import SKETCH_SIZE, Sketch, jaccard, shingle_hash

from tests.ingest import samples


def fingerprint(
    data: bytes, chunk: int
) -> tuple[str, int, tuple[int, int] | None, tuple[int, ...]]:
    printer = Fingerprinter()
    for start in range(0, len(data), chunk):
        printer.feed(data[start : start + chunk])
    found = printer.finish()
    return found.sha256, found.size, found.bad_utf8_at, found.sketch


@pytest.mark.parametrize("chunk", [1, 3, 7, 1 << 20])
def test_a_fingerprint_does_not_depend_on_how_the_bytes_were_chunked(chunk: int) -> None:
    data = "Name,City\nZoë,Zürich\n€uro,Ålesund\n".encode() * 3
    sha, size, bad, sketch = fingerprint(data, chunk)
    assert (sha, size, bad) == (hashlib.sha256(data).hexdigest(), len(data), None)
    assert sketch == fingerprint(data, len(data))[3]
    assert len(sketch) == 3  # three distinct lines


@pytest.mark.parametrize("chunk", [1, 5, 1 << 20])
def test_the_first_byte_that_is_not_utf8_is_found_in_any_chunking(chunk: int) -> None:
    assert fingerprint(b"ok\nJos\xe9\n", chunk)[2] == (6, 0xE9)
    assert fingerprint(b"cut at the end \xe2\x82", chunk)[2] == (15, 0xE2)


def test_sketch_similarity_is_exact_for_small_files() -> None:
    first = [shingle_hash(f"row {i}".encode()) for i in range(100)]
    second = [shingle_hash(f"row {i}".encode()) for i in range(20, 130)]
    exact = 80 / 130
    assert jaccard(Sketch().update(first).values(), Sketch().update(second).values()) == exact
    assert jaccard((), ()) == 0.0


def test_sketch_similarity_is_close_for_large_files() -> None:
    first = {shingle_hash(f"row {i}".encode()) for i in range(20_000)}
    second = {shingle_hash(f"row {i}".encode()) for i in range(5_000, 25_000)}
    exact = len(first & second) / len(first | second)
    estimate = jaccard(Sketch().update(first).values(), Sketch().update(second).values())
    assert len(Sketch().update(first).values()) == SKETCH_SIZE
    assert abs(estimate - exact) < 0.1  # a bound on the estimator, with 256 hashes


def test_the_most_similar_file_above_the_threshold_is_chosen() -> None:
    base = [shingle_hash(f"line {i}".encode()) for i in range(50)]
    near = SketchEntry("job-near", "near.csv", Sketch().update(base[:45]).values())
    far = SketchEntry("job-far", "far.csv", Sketch().update(base[:10]).values())
    found = most_similar(Sketch().update(base).values(), [far, near])
    assert found == (near, 0.9)
    assert most_similar(Sketch().update(base).values(), [far]) is None  # 0.2: not near


def test_delta_counts_each_row_of_the_new_upload() -> None:
    rows = [shingle_hash(f"r{i}".encode()) for i in range(10)]
    previous = Previous("job-1", __import__("array").array("Q", rows[:6]))
    new = __import__("array").array("Q", rows[4:] + rows[4:5])  # r4 twice
    assert count_delta(new, previous) == (4, 3)
    assert count_delta(new, None) == (7, 0)


@pytest.mark.parametrize(
    ("data", "platform", "document"),
    [
        (samples.stripe_csv(), "Stripe", "payment report"),
        (samples.paypal_csv(), "PayPal", "payment report"),
        (samples.shopify_csv(), "Shopify", "order export"),
        (samples.chase_csv(), "Chase", "bank statement"),
        (samples.bank_of_america_csv(), "Bank of America", "bank statement"),
        (samples.amex_csv(), "American Express", "card statement"),
        (samples.monzo_csv(), "Monzo", "bank statement"),
        (samples.stripe_api_json(), "Stripe", "payment report"),
        (samples.contacts_csv(), None, "contact list"),
        (samples.transactions_json(), None, "transaction list"),
        (samples.settings_json(), None, "JSON document"),
        (samples.invoice_email(), None, "invoice e-mail"),
        (samples.plain_email(), None, "e-mail"),
        (b"Dear diary,\ntoday was fine.\n", None, "text document"),
    ],
)
def test_platforms_and_document_types(
    tmp_path: Path, data: bytes, platform: str | None, document: str
) -> None:
    path = tmp_path / "upload"
    path.write_bytes(data)
    printer = Fingerprinter()
    printer.feed(data)
    extension = {"{": ".json", "F": ".eml", "D": ".txt"}.get(chr(data[0]), ".csv")
    analysis = analyse(path, f"file{extension}", printer.finish())
    found = detect_platform(analysis.field_names) if analysis.columns else None
    assert (found.name if found else None) == platform
    assert classify(analysis, found) == document


def test_a_signature_needs_every_column_and_the_most_specific_wins() -> None:
    chase = set(samples.CHASE)
    assert detect_platform(chase - {"Balance"}) is None
    # Bank of America's four columns plus Chase's: the longer signature wins.
    both = detect_platform([*chase, "Date", "Running Bal."])
    assert both is not None and both.name == "Chase"
    assert detect_platform([name.upper() + "  " for name in samples.CHASE]) is not None
    assert len({platform.name for platform in PLATFORMS}) >= 10


def test_entities_are_found_then_resolved_to_distinct_values() -> None:
    collector = EntityCollector().feed_all(
        [
            "Write to Alice@Example.com or alice@example.com, cc bob@example.org.",
            "See https://Example.com/pay/1. Or (https://example.com/pay/1)",
            "Due 2024-04-30, also April 30, 2024 and 30 Apr 2024; paid 03/04/2024.",
            "Total $1,249.00, fee 12.50 EUR and (£3.20); not an amount: 1249.",
        ]
    )
    summary = collector.summary()
    assert {kind: value["found"] for kind, value in summary.items()} == {
        "emails": 3,
        "urls": 2,
        "dates": 4,
        "amounts": 3,
    }
    assert {kind: value["distinct"] for kind, value in summary.items()} == {
        "emails": 2,
        "urls": 1,
        "dates": 2,  # three spellings of 2024-04-30, and 03/04/2024
        "amounts": 3,
    }
    assert summary["emails"]["examples"] == ["Alice@Example.com", "bob@example.org"]
    assert summary["urls"]["examples"] == ["https://Example.com/pay/1"]
    assert (collector.total_found, collector.total_distinct) == (12, 8)


def test_entity_search_is_linear_on_hostile_text() -> None:
    text = "a" * 200_000 + "@" + "b." * 50_000 + " " + "$" + "1," * 10_000
    collector = EntityCollector()
    collector.feed(text)
    assert collector.total_found <= 2
    random.seed(7)
    noise = "".join(random.choice("@.:/$,0123456789abc ") for _ in range(100_000))
    EntityCollector().feed(noise)  # finishes: the test timeout bounds it


def test_a_file_without_line_breaks_is_fingerprinted_in_bounded_memory() -> None:
    data = b"x" * (5 << 20)
    sha, size, bad, sketch = fingerprint(data, 1 << 20)
    assert (sha, size, bad) == (hashlib.sha256(data).hexdigest(), len(data), None)
    assert sketch == (shingle_hash(b"x" * (1 << 16)),)
