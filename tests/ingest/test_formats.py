"""Kind, layout and field types of real sample files; bad files give a sentence a person reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from tidings.ingest import BadFile
from tidings.ingest.formats import Analysis, ColumnTyper, analyse, detect_kind, texts_of
from tidings.ingest.hashing import Fingerprinter

from tests.ingest import samples


def read(tmp_path: Path, name: str, data: bytes) -> Analysis:
    path = tmp_path / "stored.upload"  # the stored name never matters, only the display name
    path.write_bytes(data)
    printer = Fingerprinter()
    printer.feed(data)
    return analyse(path, name, printer.finish())


def fields(analysis: Analysis) -> dict[str, str]:
    return {field.name: field.type for field in analysis.fields}


@pytest.mark.parametrize(
    ("name", "data", "kind"),
    [
        ("a.csv", samples.chase_csv(), "csv"),
        ("a.tsv", samples.contacts_csv(delimiter="\t"), "csv"),
        ("a.json", samples.settings_json(), "json"),
        ("a.jsonl", samples.events_jsonl(), "json"),
        ("a.eml", samples.invoice_email(), "email"),
        # no telling extension: the content decides
        ("export", samples.contacts_csv(delimiter=";"), "csv"),
        ("data.txt", samples.transactions_json(), "json"),
        ("message", samples.plain_email(), "email"),
        ("notes.txt", b"Remember the milk.\nAnd the bread.\n", "text"),
    ],
)
def test_kind_is_told_by_extension_then_content(name: str, data: bytes, kind: str) -> None:
    assert detect_kind(name, data[:65536]) == kind


def test_a_bank_export_has_its_header_dialect_rows_and_column_types(tmp_path: Path) -> None:
    analysis = read(tmp_path, "chase.csv", samples.chase_csv())
    assert (analysis.kind, analysis.records, analysis.columns) == ("csv", 50, 7)
    assert analysis.details == {"delimiter": ",", "quotechar": '"', "has_header": True}
    assert fields(analysis) == {
        "Details": "text",
        "Posting Date": "date",
        "Description": "text",
        "Amount": "decimal",
        "Type": "text",
        "Balance": "decimal",
        "Check or Slip #": "empty",
    }
    assert len(set(analysis.record_hashes)) == 50


def test_every_column_type_and_a_quoted_line_break(tmp_path: Path) -> None:
    analysis = read(tmp_path, "typed.csv", samples.typed_csv())
    assert analysis.records == 8  # the quoted line break does not make a ninth row
    assert fields(analysis) == {
        "flag": "boolean",
        "count": "integer",
        "ratio": "decimal",
        "price": "money",
        "day": "date",
        "moment": "datetime",
        "mail": "email",
        "site": "url",
        "note": "text",
    }


@pytest.mark.parametrize(("delimiter", "name"), [(";", "contacts.csv"), ("\t", "contacts.tsv")])
def test_other_delimiters_are_sniffed(tmp_path: Path, delimiter: str, name: str) -> None:
    analysis = read(tmp_path, name, samples.contacts_csv(delimiter=delimiter))
    assert analysis.details["delimiter"] == delimiter
    assert (analysis.records, fields(analysis)["Email"]) == (30, "email")


def test_a_table_without_a_header_gets_numbered_columns(tmp_path: Path) -> None:
    analysis = read(tmp_path, "plain.csv", b"1,2024-01-01,4.50\n2,2024-01-02,3.25\n")
    assert analysis.details["has_header"] is False
    assert analysis.records == 2
    assert [field.name for field in analysis.fields] == ["column_1", "column_2", "column_3"]


def test_trailing_delimiters_are_not_ragged_but_missing_cells_are(tmp_path: Path) -> None:
    padded = read(tmp_path, "padded.csv", b"a,b\n1,2,\n3,4,,\n")
    assert (padded.records, padded.columns) == (2, 2)
    with pytest.raises(BadFile) as caught:
        read(tmp_path, "ragged.csv", samples.RAGGED_CSV)
    assert caught.value.message == (
        "Line 3 of ragged.csv has 2 columns where the header has 3. "
        "Every row needs the same number of columns."
    )


def test_json_records_are_found_under_their_key(tmp_path: Path) -> None:
    analysis = read(tmp_path, "tx.json", samples.transactions_json())
    assert analysis.details == {"shape": "object", "records_path": "transactions"}
    assert (analysis.records, analysis.columns) == (10, 5)
    assert fields(analysis) == {
        "id": "integer",
        "date": "date",
        "amount": "decimal",
        "paid": "boolean",
        "email": "email",
    }


def test_a_single_json_object_and_json_lines(tmp_path: Path) -> None:
    single = read(tmp_path, "settings.json", samples.settings_json())
    assert (single.records, single.details["shape"]) == (1, "object")
    assert fields(single) == {"theme": "text", "retries": "integer", "endpoints": "array"}
    lines = read(tmp_path, "events.jsonl", samples.events_jsonl())
    assert (lines.records, lines.details["shape"]) == (6, "lines")
    unnamed = read(tmp_path, "events", samples.events_jsonl())  # no extension: still lines
    assert unnamed.records == 6


def test_an_email_has_its_headers_addresses_and_attachments(tmp_path: Path) -> None:
    analysis = read(tmp_path, "invoice.eml", samples.invoice_email())
    assert (analysis.kind, analysis.records, analysis.columns) == ("email", 1, None)
    details = analysis.details
    assert details["subject"] == "Invoice 2024-117 for March"
    assert details["from"] == ["billing@vendor.example"]
    assert details["to"] == ["alice@example.com", "bob@example.com"]
    assert details["cc"] == ["accounts@example.com"]
    assert details["date"] == "2024-04-02T10:15:00+00:00"
    assert details["attachments"] == [
        {"filename": "invoice-117.pdf", "content_type": "application/pdf", "size_bytes": 13}
    ]
    assert fields(analysis)["From"] == "address" and fields(analysis)["Date"] == "datetime"


def test_an_email_in_another_charset_is_read(tmp_path: Path) -> None:
    data = (
        b"From: a@example.com\nTo: b@example.com\nSubject: Caf\xe9\n"
        b"Content-Type: text/plain; charset=latin-1\nContent-Transfer-Encoding: 8bit\n\n"
        b"Un caf\xe9 \xe0 2 EUR.\n"
    )
    analysis = read(tmp_path, "cafe.eml", data)
    assert analysis.kind == "email"
    assert any("café" in text for text in texts_of(tmp_path / "stored.upload", "email"))


@pytest.mark.parametrize(
    ("name", "data", "sentence"),
    [
        (
            "people.csv",
            samples.LATIN1_CSV,
            "people.csv is not UTF-8 text: byte 14 (0xE9) cannot be read as UTF-8. "
            "Save it as UTF-8 (CSV, JSON, e-mail or plain text) and upload it again.",
        ),
        (
            "broken.json",
            samples.INVALID_JSON,
            "broken.json is not valid JSON: Expecting value at line 2, column 17.",
        ),
        (
            "events.jsonl",
            b'{"a": 1}\n{"a": \n',
            "Line 2 of events.jsonl is not valid JSON: Expecting value (column 7).",
        ),
        (
            "excel.csv",
            "Name\tCity\nZoë\tZürich\n".encode("utf-16"),
            "excel.csv is saved as UTF-16 text. Save it as UTF-8 and upload it again.",
        ),
        (
            "scan.pdf",
            b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
            "scan.pdf is not a kind of file I can read: "
            "I read CSV, JSON, e-mail (.eml) and plain text files.",
        ),
        (
            "image",
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
            "image is not a kind of file I can read: "
            "I read CSV, JSON, e-mail (.eml) and plain text files.",
        ),
        ("deep.json", b"[" * 200_000, "deep.json is nested too deeply to be read."),
        (
            "huge-field.csv",
            b'a,b\n1,"' + b"x" * 200_000 + b'"\n',
            "huge-field.csv could not be read as CSV: line 2: "
            "field larger than field limit (131072).",
        ),
        ("blank.csv", samples.BLANK, "blank.csv has no data: it holds only blank lines."),
        ("blank.txt", samples.BLANK, "blank.txt has no data: it holds only blank lines."),
        (
            "mail.eml",
            samples.NOT_AN_EMAIL,
            "mail.eml does not look like an e-mail message: it has no From, To or Subject header.",
        ),
    ],
)
def test_bad_files_say_what_is_wrong(tmp_path: Path, name: str, data: bytes, sentence: str) -> None:
    with pytest.raises(BadFile) as caught:
        read(tmp_path, name, data)
    assert caught.value.message == sentence
    assert caught.value.code == "invalid_file"


def test_a_type_holds_only_when_every_value_has_it() -> None:
    typer = ColumnTyper()
    for value in ("1", "2", " 3 ", ""):
        typer.add(value)
    assert typer.type == "integer"
    typer.add("4.5")
    assert typer.type == "decimal"
    typer.add("$5.00")
    assert typer.type == "money"
    typer.add("five")
    assert typer.type == "text"
    assert ColumnTyper().type == "empty"
