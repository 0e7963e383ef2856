"""The ingestion pipeline on generated sample files, through ``POST /api/upload`` on both stores."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from tidings.ingest.hashing import CHUNK_SIZE
from tidings.messages.humanize import format_size
from tidings.web.keys import PIPELINES, UPLOAD_DIR

from tests.ingest import samples
from tests.ingest.support import (
    Gate,
    events_of,
    finished,
    process,
    settings_for,
    steps,
    store_url,
    upload,
)
from tests.support import eventually, http_json, running_app

Node = tuple[str, web.Application]

ALL_STEPS = [
    "queued",
    "initializing_streaming",
    "hashing",
    "duplicate_check",
    "field_detection",
    "platform_detection",
    "document_classification",
    "delta_analysis_complete",
    "storing",
    "complete",
]


@pytest.fixture(params=["memory", "redis"])
async def node(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Node]:
    async with running_app(settings_for(tmp_path, store_url(request))) as running:
        yield running


async def test_a_bank_export_reports_every_step_in_order_and_a_useful_result(node: Node) -> None:
    url, app = node
    data = samples.chase_csv()
    job = await process(url, "chase.csv", data)

    assert job["status"] == "done"
    assert steps(job) == ALL_STEPS
    assert all(entry["status"] == "complete" for entry in job["steps"])
    assert job["message"] == "Done! I've processed chase.csv successfully (50 rows)"
    assert job["extra"] == {
        "type": "upload",
        "filename": "chase.csv",
        "size_bytes": len(data),
        "kind": "csv",
        "rows": 50,
        "columns": 7,
        "platform": "Chase",
        "document_type": "bank statement",
    }
    result = job["result"]
    assert {key: result[key] for key in ("kind", "rows", "columns", "platform")} == {
        "kind": "csv",
        "rows": 50,
        "columns": 7,
        "platform": "Chase",
    }
    assert result["document_type"] == "bank statement"
    assert result["size_bytes"] == len(data) and len(result["sha256"]) == 64
    assert result["fields"][1] == {"name": "Posting Date", "type": "date"}
    assert result["format"] == {"delimiter": ",", "quotechar": '"', "has_header": True}
    assert result["duplicate_of"] is None and result["near_duplicate"] is None
    assert result["delta"] == {"previous_job_id": None, "new_rows": 50, "existing_rows": 0}
    assert result["entities"] is None

    events = await events_of(url, job["job_id"])
    assert [event["seq"] for event in events] == list(range(1, len(events) + 1))
    progress = [event["progress"] for event in events if event["progress"] is not None]
    assert progress == sorted(progress) and progress[-1] == 100
    messages = [event["message"] for event in events]
    size = format_size(len(data))
    assert f"Taking a fingerprint of chase.csv ({format_size(0)} of {size})..." in messages
    assert f"Taking a fingerprint of chase.csv ({size} of {size})..." in messages
    assert "Checking if I've seen chase.csv before..." in messages
    assert "Analyzing the structure of chase.csv (7 columns)..." in messages
    assert "Figuring out where this data came from - looks like Chase" in messages
    assert "Understanding what type of document this is - looks like a bank statement" in messages
    assert "Spotted the differences: 50 new rows, none I already know" in messages
    assert "Saving 50 rows from chase.csv..." in messages
    await eventually(lambda: not any(app[UPLOAD_DIR].iterdir()), what="the stored file removed")


@pytest.mark.parametrize(
    ("name", "data", "kind", "platform", "document_type", "rows", "columns"),
    [
        ("stripe.csv", samples.stripe_csv(), "csv", "Stripe", "payment report", 40, 11),
        ("paypal.csv", samples.paypal_csv(), "csv", "PayPal", "payment report", 25, 13),
        ("orders.csv", samples.shopify_csv(), "csv", "Shopify", "order export", 12, 11),
        (
            "boa.csv",
            samples.bank_of_america_csv(),
            "csv",
            "Bank of America",
            "bank statement",
            20,
            4,
        ),
        ("amex.csv", samples.amex_csv(), "csv", "American Express", "card statement", 15, 5),
        ("monzo.csv", samples.monzo_csv(), "csv", "Monzo", "bank statement", 10, 10),
        ("people.tsv", samples.contacts_csv(delimiter="\t"), "csv", None, "contact list", 30, 3),
        ("charges.json", samples.stripe_api_json(), "json", "Stripe", "payment report", 5, 6),
        ("tx.json", samples.transactions_json(), "json", None, "transaction list", 10, 5),
        ("events.jsonl", samples.events_jsonl(), "json", None, "data set", 6, 2),
        ("invoice.eml", samples.invoice_email(), "email", None, "invoice e-mail", 1, None),
        ("notes.txt", b"one\ntwo\n\nthree\n", "text", None, "text document", 3, None),
    ],
)
async def test_each_sample_is_recognised(
    node: Node,
    name: str,
    data: bytes,
    kind: str,
    platform: str | None,
    document_type: str,
    rows: int,
    columns: int | None,
) -> None:
    job = await process(node[0], name, data)
    assert job["status"] == "done", job["error"]
    result = job["result"]
    assert (result["kind"], result["platform"], result["document_type"]) == (
        kind,
        platform,
        document_type,
    )
    assert (result["rows"], result["columns"]) == (rows, columns)


async def test_an_email_reports_its_addresses_and_attachments(node: Node) -> None:
    job = await process(node[0], "invoice.eml", samples.invoice_email())
    email = job["result"]["format"]
    assert email["to"] == ["alice@example.com", "bob@example.com"]
    assert email["attachments"][0]["filename"] == "invoice-117.pdf"
    assert email["attachment_count"] == 1


async def test_an_exact_copy_is_found_and_ends_early(node: Node) -> None:
    url, _ = node
    first = await process(url, "march.csv", samples.chase_csv())
    copy = await process(url, "march (1).csv", samples.chase_csv())

    assert copy["status"] == "done"
    assert steps(copy) == [
        "queued",
        "initializing_streaming",
        "hashing",
        "duplicate_check",
        "duplicate_found",
        "complete",
    ]
    assert copy["message"] == "Found an exact match - I've processed this before as march.csv"
    result = copy["result"]
    assert result["duplicate_of"] == {"job_id": first["job_id"], "filename": "march.csv"}
    assert (result["kind"], result["platform"], result["rows"]) == ("csv", "Chase", 50)
    # control arm: one byte more is not the same file
    changed = await process(url, "march (2).csv", samples.chase_csv() + b"\r\n")
    assert changed["result"]["duplicate_of"] is None
    assert "duplicate_found" not in steps(changed)


async def test_two_copies_in_one_upload_are_one_original_and_one_duplicate(node: Node) -> None:
    url, _ = node
    data = samples.stripe_csv()
    status, body = await upload(url, [("a.csv", data), ("b.csv", data), ("c.csv", data)])
    assert status == 202
    jobs = [await finished(url, job["job_id"]) for job in body["jobs"]]
    originals = [job for job in jobs if job["result"]["duplicate_of"] is None]
    assert len(originals) == 1
    for job in jobs:
        if job is not originals[0]:
            assert job["result"]["duplicate_of"]["job_id"] == originals[0]["job_id"]


async def test_a_revised_export_is_a_near_duplicate_with_exact_delta_counts(node: Node) -> None:
    url, _ = node
    first = await process(url, "statement.csv", samples.chase_csv(range(0, 50)))
    revised = await process(url, "statement.csv", samples.chase_csv(range(10, 65)))

    assert steps(revised) == [*ALL_STEPS[:4], "near_duplicate_found", *ALL_STEPS[4:]]
    # lines: the header and rows 10-49 shared (41); 51 + 56 - 41 = 66 distinct between them
    score = round(41 / 66, 4)
    assert revised["result"]["near_duplicate"] == {
        "job_id": first["job_id"],
        "filename": "statement.csv",
        "similarity_score": score,
    }
    assert revised["result"]["delta"] == {
        "previous_job_id": first["job_id"],
        "new_rows": 15,
        "existing_rows": 40,
    }
    messages = [event["message"] for event in await events_of(url, revised["job_id"])]
    assert "Found a similar file (statement.csv, 62% alike) - let me compare them" in messages
    assert "Spotted the differences: 15 new rows, 40 I already know" in messages

    # control arms: the delta is against the same name only; an unrelated file is not near
    renamed = await process(url, "other-name.csv", samples.chase_csv(range(5, 60)))
    assert renamed["result"]["delta"] == {
        "previous_job_id": None,
        "new_rows": 55,
        "existing_rows": 0,
    }
    assert renamed["result"]["near_duplicate"] is not None
    unrelated = await process(url, "people.csv", samples.contacts_csv())
    assert unrelated["result"]["near_duplicate"] is None


async def test_the_delta_is_against_the_latest_upload_of_the_name(node: Node) -> None:
    url, _ = node
    await process(url, "s.csv", samples.chase_csv(range(0, 10)))
    second = await process(url, "s.csv", samples.chase_csv(range(5, 20)))
    third = await process(url, "s.csv", samples.chase_csv(range(0, 12)))
    assert third["result"]["delta"] == {
        "previous_job_id": second["job_id"],
        "new_rows": 5,  # rows 0-4 were in the first upload, not in the latest
        "existing_rows": 7,
    }


async def test_uploads_of_different_users_are_not_compared(node: Node) -> None:
    url, _ = node
    data = samples.paypal_csv()
    status, body = await upload(url, [("p.csv", data)], query="?user_id=alice")
    await finished(url, body["jobs"][0]["job_id"])
    status, body = await upload(url, [("p.csv", data)], query="?user_id=bob")
    bob = await finished(url, body["jobs"][0]["job_id"])
    assert bob["owner"] == "bob"
    assert bob["result"]["duplicate_of"] is None
    assert bob["result"]["delta"]["existing_rows"] == 0
    status, body = await upload(url, [("p.csv", data)], query="?user_id=alice")
    assert status == 202
    alice = await finished(url, body["jobs"][0]["job_id"])
    assert alice["result"]["duplicate_of"] is not None


@pytest.mark.parametrize(
    ("name", "data", "failed_in", "sentence"),
    [
        (
            "empty.csv",
            samples.EMPTY,
            "hashing",
            "empty.csv is empty: there is nothing in it to read.",
        ),
        (
            "people.csv",
            samples.LATIN1_CSV,
            "field_detection",
            "people.csv is not UTF-8 text: byte 14 (0xE9) cannot be read as UTF-8. "
            "Save it as UTF-8 (CSV, JSON, e-mail or plain text) and upload it again.",
        ),
        (
            "ragged.csv",
            samples.RAGGED_CSV,
            "field_detection",
            "Line 3 of ragged.csv has 2 columns where the header has 3. "
            "Every row needs the same number of columns.",
        ),
        (
            "broken.json",
            samples.INVALID_JSON,
            "field_detection",
            "broken.json is not valid JSON: Expecting value at line 2, column 17.",
        ),
        (
            "blank.txt",
            samples.BLANK,
            "field_detection",
            "blank.txt has no data: it holds only blank lines.",
        ),
    ],
)
async def test_a_bad_file_ends_in_job_error_with_a_sentence(
    node: Node, name: str, data: bytes, failed_in: str, sentence: str
) -> None:
    url, _ = node
    job = await process(url, name, data)
    assert job["status"] == "error"
    assert job["error"] == {"code": "invalid_file", "message": sentence}
    assert job["step"] == failed_in and job["steps"][-1]["status"] == "error"
    assert job["message"].startswith("Oops, something went wrong: ")
    assert "Traceback" not in job["message"]
    events = await events_of(url, job["job_id"])
    assert events[-1]["status"] == "error" and events[-1]["error"]["message"] == sentence
    # a failed file is not remembered: the same bytes again fail again, not as a duplicate
    again = await process(url, f"again-{name}", data)
    assert again["status"] == "error"


async def test_entities_are_extracted_only_when_asked(node: Node) -> None:
    url, _ = node
    plain = await process(url, "invoice.eml", samples.invoice_email())
    assert plain["result"]["entities"] is None
    assert "entity_extraction" not in steps(plain)

    status, body = await upload(
        url,
        [("invoice (copy).eml", samples.invoice_email(attachment=False))],
        fields={"extract_entities": "true"},
    )
    assert status == 202
    job = await finished(url, body["jobs"][0]["job_id"])
    assert steps(job)[-5:] == [
        "delta_analysis_complete",
        "entity_extraction",
        "entity_resolution",
        "storing",
        "complete",
    ]
    entities = job["result"]["entities"]
    assert {kind: value["distinct"] for kind, value in entities.items()} == {
        "emails": 4,  # billing@ (From and body), alice@, bob@, accounts@
        "urls": 1,
        "dates": 2,  # 2024-04-30 and the Date header's 02 Apr 2024
        "amounts": 1,
    }
    assert entities["emails"]["found"] == 5
    assert entities["amounts"]["examples"] == ["$1,249.00"]
    messages = [event["message"] for event in await events_of(url, job["job_id"])]
    assert "Picking out e-mail addresses, links, dates and amounts - 9 found so far..." in messages
    assert "Matching 8 entities across your data..." in messages


async def test_cancel_mid_pipeline_stops_it_between_steps(node: Node) -> None:
    url, app = node
    gate = Gate(app, "field_detection")
    data = samples.chase_csv()
    status, body = await upload(url, [("chase.csv", data)])
    job_id = body["jobs"][0]["job_id"]
    await eventually(lambda: gate.arrived == [job_id], what="the pipeline at field_detection")

    status, cancelled = await http_json("POST", f"{url}/api/jobs/{job_id}/cancel")
    assert status == 200 and cancelled["status"] == "cancelled"
    gate.release()
    await eventually(lambda: app[PIPELINES].running == 0, what="the pipeline to stop")

    job = await finished(url, job_id)
    assert job["status"] == "cancelled"
    assert steps(job) == ALL_STEPS[:5]
    events = await events_of(url, job_id)
    assert events[-1]["status"] == "cancelled"  # nothing reported after the cancel
    assert "platform_detection" not in [event["step"] for event in events]
    assert not any(app[UPLOAD_DIR].iterdir())
    # the cancelled file was not remembered: uploading it again runs the whole pipeline
    again = await process(url, "chase.csv", data)
    assert steps(again) == ALL_STEPS and again["result"]["duplicate_of"] is None


async def test_without_a_cancel_the_held_pipeline_finishes(node: Node) -> None:
    """The control arm of the cancel test: the same hold, released, reaches done."""
    url, app = node
    gate = Gate(app, "field_detection")
    status, body = await upload(url, [("chase.csv", samples.chase_csv())])
    assert status == 202
    job_id = body["jobs"][0]["job_id"]
    await eventually(lambda: gate.arrived == [job_id], what="the pipeline at field_detection")
    gate.release()
    job = await finished(url, job_id)
    assert job["status"] == "done" and steps(job) == ALL_STEPS


@pytest.mark.parametrize("store", ["memory", "redis"])
async def test_a_large_file_is_hashed_in_chunks_with_byte_progress(
    request: pytest.FixtureRequest, tmp_path: Path, store: str
) -> None:
    """With no coalescing window every chunk's report is an event (by default, reports within
    the window collapse into the latest, and a fast disk may show only a few)."""
    redis_url = request.getfixturevalue("redis_url") if store == "redis" else None
    data = samples.chase_csv(range(80_000))  # a little over 5 MB
    assert len(data) > 4 * CHUNK_SIZE
    async with running_app(settings_for(tmp_path, redis_url, coalesce_window=0)) as (url, _):
        job = await process(url, "year.csv", data)
        events = await events_of(url, job["job_id"])
    assert job["status"] == "done" and job["result"]["rows"] == 80_000

    hashing = [event for event in events if event["step"] == "hashing"]
    # the first report at 0 bytes, then one per chunk (1 MB here: a twentieth would be smaller)
    assert len(hashing) == 1 + -(-len(data) // CHUNK_SIZE)
    progress = [event["progress"] for event in hashing]
    assert progress == sorted(set(progress)) and progress[0] == 5 and progress[-1] == 30
    total = format_size(len(data))
    assert hashing[1]["message"] == (
        f"Taking a fingerprint of year.csv ({format_size(CHUNK_SIZE)} of {total})..."
    )
    assert hashing[-1]["message"] == f"Taking a fingerprint of year.csv ({total} of {total})..."
