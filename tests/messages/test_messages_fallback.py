"""The humane fallback for steps nobody wrote a sentence for."""

from __future__ import annotations

import pytest
from tidings.messages import generate_friendly_status, humanize_step


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        ("validating_iban_checksums", "Validating IBAN checksums..."),
        ("validate_iban_checksums", "Validating IBAN checksums..."),
        ("validateIBANChecksums", "Validating IBAN checksums..."),
        ("ValidateIbanChecksums", "Validating IBAN checksums..."),
        ("validate-iban.checksums", "Validating IBAN checksums..."),
        ("upload_csv_to_s3", "Uploading CSV to S3..."),
        ("run_ocr", "Running OCR..."),
        ("parse_json_payload", "Parsing JSON payload..."),
        ("tie_records", "Working on tie records..."),
        ("sync_quickbooks_and_paypal", "Syncing QuickBooks and PayPal..."),
        ("iban_validation_complete", "IBAN validation complete"),
        ("rows_imported", "Rows imported"),
        ("duplicates_found", "Duplicates found"),
        ("pdf_pages_split", "PDF pages split"),
        ("iban_validation_failed", "Something went wrong with IBAN validation"),
        ("parse_error", "Something went wrong with parsing"),
        ("ocr_pass", "Working on OCR pass..."),
        ("vat_report", "Working on VAT report..."),
        ("step_3", "Working on step 3..."),
        ("resize_8f3a2c91", "Resizing..."),
        ("process_file_550e8400-e29b-41d4-a716-446655440000", "Processing file..."),
        ("thumbnail_1700000000", "Working on thumbnail..."),
        ("ready", "Ready"),
        ("export_ok", "Export OK"),
        ("", "Working on it..."),
        ("___", "Working on it..."),
        ("\u202e\x00", "Working on it..."),
        ("{evil}<b>", "Working on evil b..."),
    ],
)
def test_humanize_step(step: str, expected: str) -> None:
    assert humanize_step(step) == expected
    assert generate_friendly_status(step) == expected


def test_long_step_names_are_cut_to_a_few_words() -> None:
    sentence = humanize_step("_".join(["checking"] + ["part"] * 500))
    assert sentence == "Checking part part part part part part part..."


def test_the_fallback_ignores_the_context() -> None:
    assert generate_friendly_status("validating_iban_checksums", {"filename": "a.csv"}) == (
        "Validating IBAN checksums..."
    )
