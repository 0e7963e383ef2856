"""What a file is and how it is laid out: CSV, JSON, e-mail or plain text.

``analyse`` reads a file once more after hashing (streaming for CSV and text; JSON and e-mail
are parsed whole by the standard library) and returns its kind, records, fields with their
types, format details and one 64-bit hash per record, which delta analysis compares with the
previous upload of the same name. A file that cannot be read raises ``BadFile`` with a sentence
a person can act on. Everything here is synchronous: the pipeline runs it in a worker process
(``pool.ParsePool``), where it cannot hold the server's GIL and has a time budget.

What one parse may hold is bounded by ``Limits``, proportional to the upload limit: a CSV record,
a JSON line or a text line; a JSON document or e-mail parsed whole; the JSON objects and arrays
decoded from one document. Past a limit the file fails with a sentence naming it. The CSV dialect
and header are told by counting, without regular expressions that could backtrack: the standard
library's ``csv.Sniffer`` froze a node for half a minute on a 60 KB file.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Final, Literal

from tidings.ingest.entities import AMOUNT, DATE, DATETIME, EMAIL, URL
from tidings.ingest.errors import BadFile
from tidings.ingest.hashing import Fingerprint
from tidings.ingest.similarity import shingle_hash
from tidings.messages.humanize import clean_filename, clean_text

if TYPE_CHECKING:
    from _csv import Reader as CsvReader

__all__ = [
    "DEFAULT_LIMITS",
    "Analysis",
    "ColumnTyper",
    "Field",
    "Kind",
    "Limits",
    "analyse",
    "detect_kind",
    "texts_of",
]

Kind = Literal["csv", "json", "email", "text"]

CSV_EXTENSIONS: Final = frozenset({".csv", ".tsv", ".tab"})
JSON_EXTENSIONS: Final = frozenset({".json", ".geojson"})
JSON_LINES_EXTENSIONS: Final = frozenset({".jsonl", ".ndjson"})
EMAIL_EXTENSIONS: Final = frozenset({".eml"})
#: Files that are never text, refused with a sentence that says so.
BINARY_EXTENSIONS: Final = frozenset(
    {".pdf", ".xls", ".xlsx", ".doc", ".docx", ".zip", ".gz", ".png", ".jpg", ".jpeg", ".gif"}
)

#: Bytes of a file's head looked at to tell its kind and sniff a CSV dialect.
HEAD_BYTES: Final = 64 * 1024
#: Records whose values decide the field types; every record is still counted and hashed.
TYPED_RECORDS: Final = 10_000
#: Fields listed in a result; wider files are still read whole.
MAX_FIELDS: Final = 200
#: Attachments and addresses listed in an e-mail's details.
MAX_LISTED: Final = 50
#: Longest subject or header text kept in a result.
MAX_HEADER_TEXT: Final = 200

#: Non-blank lines of the head that decide a CSV dialect and header.
SAMPLE_LINES: Final = 50

_ROW_SEPARATOR: Final = "\x1f"
_DELIMITERS: Final = ",;\t|"
_RECORD_KEYS: Final = ("data", "items", "results", "records", "rows", "transactions", "entries")
_EMAIL_HEADERS: Final = ("from", "to", "cc", "bcc", "reply-to", "subject", "date", "message-id")
_ADDRESS_HEADERS: Final = ("from", "to", "cc", "bcc", "reply-to")
_EMAIL_HEAD: Final = re.compile(r"(?:[A-Za-z][A-Za-z0-9-]*:[^\n]*\n(?:[ \t][^\n]*\n)*){2,}")
_EMAIL_MARKER: Final = re.compile(
    r"^(?:from|to|subject|date|received|message-id|mime-version|return-path):",
    re.IGNORECASE | re.MULTILINE,
)
_HTML_TAG: Final = re.compile(r"<[^>]{0,2000}>")


# --- field types -----------------------------------------------------------------------------

_BOOLEAN: Final = re.compile(r"true|false|yes|no|y|n|t|f", re.IGNORECASE)
_INTEGER: Final = re.compile(r"[+-]?\d+")
_DECIMAL: Final = re.compile(
    r"[+-]?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
)
_NEGATIVE_IN_PARENTHESES: Final = re.compile(r"\((.+)\)")


def _is_money(value: str) -> bool:
    """An amount with or without a currency: "$1,204.50", "-4.50 EUR", "(12.00)", "12.5"."""
    inner = _NEGATIVE_IN_PARENTHESES.fullmatch(value)
    text = inner.group(1) if inner else value
    return bool(AMOUNT.fullmatch(text) or _DECIMAL.fullmatch(text))


#: Most specific first: a column gets the first type every one of its values has.
TYPE_ORDER: Final = (
    "boolean",
    "integer",
    "decimal",
    "money",
    "date",
    "datetime",
    "email",
    "url",
    "object",
    "array",
)
_STRING_TESTS: Final[dict[str, Callable[[str], object]]] = {
    "boolean": _BOOLEAN.fullmatch,
    "integer": _INTEGER.fullmatch,
    "decimal": _DECIMAL.fullmatch,
    "money": _is_money,
    "date": DATE.fullmatch,
    "datetime": DATETIME.fullmatch,
    "email": EMAIL.fullmatch,
    "url": URL.fullmatch,
}
_NUMBER_TYPES: Final = frozenset({"integer", "decimal", "money"})


class ColumnTyper:
    """The type of one column or JSON field, narrowed by each value it is shown."""

    __slots__ = ("possible", "values")

    def __init__(self) -> None:
        self.possible: frozenset[str] = frozenset(TYPE_ORDER)
        self.values = 0

    def add(self, value: object) -> None:
        if value is None:
            return
        if isinstance(value, str):
            value = value.strip()
            if not value:
                return
            if self.possible:
                self.possible = frozenset(
                    kind
                    for kind in self.possible
                    if kind in _STRING_TESTS and _STRING_TESTS[kind](value)
                )
        elif isinstance(value, bool):
            self.possible &= {"boolean"}
        elif isinstance(value, int):
            self.possible &= _NUMBER_TYPES
        elif isinstance(value, float):
            self.possible &= {"decimal", "money"}
        elif isinstance(value, dict):
            self.possible &= {"object"}
        elif isinstance(value, list):
            self.possible &= {"array"}
        else:
            self.possible = frozenset()
        self.values += 1

    @property
    def type(self) -> str:
        if not self.values:
            return "empty"
        return next((kind for kind in TYPE_ORDER if kind in self.possible), "text")


def _is_typed(cell: str) -> bool:
    """A value no header would hold: a number, an amount, a date, an address or a link."""
    return any(_STRING_TESTS[kind](cell) for kind in _STRING_TESTS if kind != "boolean")


# --- limits ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Limits:
    """What one parse may hold; ``for_upload`` scales them with the upload limit.

    ``line``: characters of one CSV record, JSON line or text line (a CSV made of two 20 MB lines
    of 2-byte cells once took 526 MB). ``document``: bytes of a JSON document or an e-mail parsed
    whole. ``containers``: JSON objects and arrays in one document (an empty object costs 64
    bytes in Python and 3 in the file: a 10 MB array of them took 287 MB).
    """

    line: int
    document: int
    containers: int

    @classmethod
    def for_upload(cls, max_upload_bytes: int) -> Limits:
        document = max(64 * 1024, max_upload_bytes // 10)
        line = max(64 * 1024, min(max_upload_bytes // 100, 4 * 1024 * 1024))
        return cls(line=line, document=document, containers=document // 16)


DEFAULT_LIMITS: Final = Limits.for_upload(100 * 1024 * 1024)


def _line_too_long(filename: str, what: str, limits: Limits) -> BadFile:
    return BadFile(
        f"{filename} has {what} longer than {limits.line:,} characters, the longest I read. "
        "Check that it is the file you meant, or split its lines."
    )


def _bounded_lines(stream: Any, filename: str, what: str, limits: Limits) -> Iterator[str]:
    """The stream's lines, each at most ``limits.line`` characters (``BadFile`` past that)."""
    while line := stream.readline(limits.line + 1):
        if len(line) > limits.line:
            raise _line_too_long(filename, what, limits)
        yield line


# --- results ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    type: str

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "type": self.type}


@dataclass
class Analysis:
    kind: Kind
    #: CSV data rows, JSON records, 1 for an e-mail, non-blank lines of text.
    records: int
    columns: int | None
    fields: list[Field]
    details: dict[str, Any]
    record_hashes: array[int] = field(default_factory=lambda: array("Q"))

    @property
    def field_names(self) -> list[str]:
        return [item.name for item in self.fields]


def analyse(
    path: Path, filename: str, fingerprint: Fingerprint, limits: Limits = DEFAULT_LIMITS
) -> Analysis:
    """Tell the file's kind and read its structure; ``BadFile`` when it cannot be read."""
    head = _head(path)
    kind = detect_kind(filename, head)
    if kind != "email":
        _require_text(filename, head, fingerprint)
    try:
        if kind == "csv":
            return _analyse_csv(path, filename, _extension(filename), limits)
        if kind == "json":
            return _analyse_json(path, filename, _extension(filename), limits)
        if kind == "email":
            return _analyse_email(path, filename, limits)
        return _analyse_text(path, filename, limits)
    except RecursionError as exc:
        raise BadFile(f"{filename} is nested too deeply to be read.") from exc


def _require_text(filename: str, head: bytes, fingerprint: Fingerprint) -> None:
    """``BadFile`` for what is not UTF-8 text, saying what it is when that is plain."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise BadFile(f"{filename} is saved as UTF-16 text. Save it as UTF-8 and upload it again.")
    if b"\x00" in head or _extension(filename) in BINARY_EXTENSIONS:
        raise BadFile(
            f"{filename} is not a kind of file I can read: "
            "I read CSV, JSON, e-mail (.eml) and plain text files."
        )
    if fingerprint.bad_utf8_at is not None:
        offset, value = fingerprint.bad_utf8_at
        raise BadFile(
            f"{filename} is not UTF-8 text: byte {offset + 1:,} (0x{value:02X}) cannot be read "
            "as UTF-8. Save it as UTF-8 (CSV, JSON, e-mail or plain text) and upload it again."
        )


def detect_kind(filename: str, head: bytes) -> Kind:
    """By extension when it says, else by content: JSON, an e-mail's headers, a table, text."""
    extension = _extension(filename)
    if extension in CSV_EXTENSIONS:
        return "csv"
    if extension in JSON_EXTENSIONS or extension in JSON_LINES_EXTENSIONS:
        return "json"
    if extension in EMAIL_EXTENSIONS:
        return "email"
    text = head.decode("utf-8-sig", "ignore").replace("\r\n", "\n")
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        return "json"
    block = _EMAIL_HEAD.match(text)
    if block and _EMAIL_MARKER.search(block.group()):
        return "email"
    if _table_width(_sample(text, complete=len(head) < HEAD_BYTES)) is not None:
        return "csv"
    return "text"


def _extension(filename: str) -> str:
    return PurePosixPath(filename).suffix.lower()


def _head(path: Path) -> bytes:
    with path.open("rb") as stream:
        return stream.read(HEAD_BYTES)


def _sample(text: str, *, complete: bool) -> str:
    """The head without its last, possibly cut, line (unless the head is the whole file)."""
    if complete or "\n" not in text:
        return text
    return text[: text.rindex("\n") + 1]


def _no_data(filename: str) -> BadFile:
    return BadFile(f"{filename} has no data: it holds only blank lines.")


# --- CSV -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Dialect:
    delimiter: str
    quotechar: str
    skipinitialspace: bool


def _sample_rows(lines: list[str], delimiter: str, quotechar: str) -> list[list[str]]:
    try:
        reader = csv.reader(lines, delimiter=delimiter, quotechar=quotechar, doublequote=True)
        return [row for row in reader if any(cell.strip() for cell in row)]
    except csv.Error:
        return []


def _sniff(sample: str) -> _Dialect | None:
    """The delimiter and quote that cut the sample's first lines into rows of one width.

    Every candidate (four delimiters, two quotes) reads the first ``SAMPLE_LINES`` non-blank
    lines with the csv module, which is linear; the one whose most common width (at least 2)
    covers most rows wins, then the wider, then the double quote, then the earlier delimiter.
    """
    lines = [line for line in sample.splitlines(keepends=True) if line.strip()][:SAMPLE_LINES]
    best: tuple[tuple[float, int, bool, int], _Dialect] | None = None
    for order, delimiter in enumerate(_DELIMITERS):
        if not any(delimiter in line for line in lines):
            continue
        for quotechar in ('"', "'"):
            rows = _sample_rows(lines, delimiter, quotechar)
            if not rows:
                continue
            widths = Counter(len(row) for row in rows)
            width, count = max(widths.items(), key=lambda item: (item[1], item[0]))
            if width < 2:
                continue
            score = (count / len(rows), width, quotechar == '"', -order)
            if best is None or score > best[0]:
                spaced = sum(line.count(delimiter + " ") for line in lines)
                total = sum(line.count(delimiter) for line in lines)
                best = (score, _Dialect(delimiter, quotechar, spaced * 2 > total))
    return None if best is None else best[1]


def _header_by_columns(first: list[str], rest: list[list[str]]) -> bool:
    """Whether the first row stands apart from the rows below it, column by column.

    A column votes for a header when every value below is typed (a number, a date, an
    address...) while its first cell is not, or when the values below share one length that
    the first cell does not have; against it otherwise. ``csv.Sniffer.has_header``'s idea,
    without its regular expressions.
    """
    votes = 0
    for index, cell in enumerate(first):
        column = [row[index].strip() for row in rest if len(row) > index and row[index].strip()]
        if not column:
            continue
        lengths = {len(value) for value in column}
        typed_below = all(_is_typed(value) for value in column) and not _is_typed(cell.strip())
        one_length_below = len(lengths) == 1 and len(cell.strip()) not in lengths
        votes += 1 if typed_below or one_length_below else -1
    return votes > 0


def _sniffed_header(sample: str, dialect: _Dialect) -> bool:
    lines = [line for line in sample.splitlines(keepends=True) if line.strip()][:SAMPLE_LINES]
    rows = _sample_rows(lines, dialect.delimiter, dialect.quotechar)
    return len(rows) >= 2 and _header_by_columns(rows[0], rows[1:])


def _table_width(sample: str) -> int | None:
    """The column count when the sample is a table (two or more rows of one width >= 2)."""
    dialect = _sniff(sample)
    if dialect is None:
        return None
    try:
        rows = [row for row in _reader(sample.splitlines(), dialect) if row]
    except csv.Error:
        return None
    widths = {len(row) for row in rows}
    if len(rows) < 2 or len(widths) != 1:
        return None
    width = widths.pop()
    return width if width >= 2 else None


def _reader(lines: Iterable[str], dialect: _Dialect) -> CsvReader:
    return csv.reader(
        lines,
        delimiter=dialect.delimiter,
        quotechar=dialect.quotechar,
        skipinitialspace=dialect.skipinitialspace,
        doublequote=True,
    )


def _is_header(row: list[str], sniffed: bool) -> bool:
    """Distinct labels with no number, date or address in them; the sniffer decides the rest."""
    cells = [cell.strip() for cell in row]
    if any(_is_typed(cell) for cell in cells if cell):
        return False
    if all(cells) and len(set(cells)) == len(cells):
        return True
    return sniffed


def _record_hash(cells: list[str]) -> int:
    return shingle_hash(_ROW_SEPARATOR.join(cell.strip() for cell in cells).encode())


def _analyse_csv(path: Path, filename: str, extension: str, limits: Limits) -> Analysis:
    head = _head(path)
    sample = _sample(head.decode("utf-8-sig", "ignore"), complete=len(head) < HEAD_BYTES)
    if not sample.strip():
        raise _no_data(filename)
    default = _Dialect("\t" if extension in (".tsv", ".tab") else ",", '"', False)
    dialect = _sniff(sample) or default
    sniffed_header = _sniffed_header(sample, dialect)

    header: list[str] | None = None
    width = 0
    typers: list[ColumnTyper] = []
    hashes: array[int] = array("Q")
    record = 0  # characters of the record being read, across its lines
    with path.open(encoding="utf-8-sig", newline="") as stream:

        def lines() -> Iterator[str]:
            nonlocal record
            for line in _bounded_lines(stream, filename, "a line", limits):
                record += len(line)
                if record > limits.line:  # a quoted field carrying the record on and on
                    raise _line_too_long(filename, "a record", limits)
                yield line

        reader = _reader(lines(), dialect)
        try:
            for row in reader:
                record = 0
                if not any(cell.strip() for cell in row):
                    continue  # blank lines and rows of empty cells
                if not width:
                    width = len(row)
                    typers = [ColumnTyper() for _ in range(min(width, MAX_FIELDS))]
                    if _is_header(row, sniffed_header):
                        header = row
                        continue
                if len(row) != width:
                    if len(row) > width and not any(cell.strip() for cell in row[width:]):
                        row = row[:width]  # trailing delimiters
                    else:
                        expected = "the header has" if header is not None else "the first row has"
                        raise BadFile(
                            f"Line {reader.line_num} of {filename} has {len(row)} columns where "
                            f"{expected} {width}. Every row needs the same number of columns."
                        )
                if len(hashes) < TYPED_RECORDS:
                    for typer, cell in zip(typers, row, strict=False):
                        typer.add(cell)
                hashes.append(_record_hash(row))
        except csv.Error as exc:
            raise BadFile(
                f"{filename} could not be read as CSV: line {reader.line_num}: {exc}."
            ) from exc
    if not width:
        raise _no_data(filename)
    names = [
        (header[index].strip() if header is not None else "") or f"column_{index + 1}"
        for index in range(len(typers))
    ]
    return Analysis(
        kind="csv",
        records=len(hashes),
        columns=width,
        fields=[Field(name, typer.type) for name, typer in zip(names, typers, strict=True)],
        details={
            "delimiter": dialect.delimiter,
            "quotechar": dialect.quotechar,
            "has_header": header is not None,
        },
        record_hashes=hashes,
    )


# --- JSON ------------------------------------------------------------------------------------


def _json_lines(path: Path, filename: str, limits: Limits) -> Iterator[Any]:
    """Each line's value, one at a time: a JSON Lines file is never held whole."""
    with path.open(encoding="utf-8-sig") as stream:
        for number, line in enumerate(_bounded_lines(stream, filename, "a line", limits), 1):
            if not line.strip():
                continue
            try:
                yield json.loads(line.rstrip("\r\n"))
            except json.JSONDecodeError as exc:
                raise BadFile(
                    f"Line {number} of {filename} is not valid JSON: {exc.msg} "
                    f"(column {exc.colno})."
                ) from exc


def _json_document(path: Path, filename: str, limits: Limits) -> str:
    """The whole text, once it is small enough to decode at once."""
    if path.stat().st_size > limits.document:
        raise BadFile(
            f"{filename} is larger than {limits.document:,} bytes, the largest JSON document I "
            "read whole. Upload it as JSON Lines (one record per line, .jsonl) instead."
        )
    text = path.read_text(encoding="utf-8-sig")
    # Every object and array opens with a brace or bracket: an upper bound, counted before
    # anything is decoded (brackets inside strings only make it stricter).
    if text.count("{") + text.count("[") > limits.containers:
        raise BadFile(
            f"{filename} holds more than {limits.containers:,} JSON objects and arrays, the most "
            "I decode from one document. Upload it as JSON Lines (one record per line) instead."
        )
    return text


def _records_of(value: Any) -> tuple[str, str | None, list[Any]]:
    """The shape and the list of records: an array, an object's one list of records, or itself."""
    if isinstance(value, list):
        return "array", None, value
    if isinstance(value, dict):
        lists = [key for key, item in value.items() if isinstance(item, list)]
        named = [key for key in _RECORD_KEYS if key in lists]
        if named:
            return "object", named[0], value[named[0]]
        of_objects = [key for key in lists if value[key] and isinstance(value[key][0], dict)]
        if len(of_objects) == 1:
            return "object", of_objects[0], value[of_objects[0]]
        return "object", None, [value]
    return "value", None, [value]


def _analyse_json(path: Path, filename: str, extension: str, limits: Limits) -> Analysis:
    if path.stat().st_size > limits.document or extension in JSON_LINES_EXTENSIONS:
        head = _head(path).decode("utf-8-sig", "ignore")
        if not head.strip():
            raise _no_data(filename)
        if extension in JSON_LINES_EXTENSIONS or _first_line_is_a_value(head, limits):
            return _json_records(_json_lines(path, filename, limits), "lines", None)
    text = _json_document(path, filename, limits)
    if not text.strip():
        raise _no_data(filename)
    records_path: str | None = None
    records: Iterable[Any]
    try:
        shape, records_path, records = _records_of(json.loads(text))
    except json.JSONDecodeError as exc:
        if exc.msg != "Extra data" or extension in JSON_EXTENSIONS:
            raise BadFile(
                f"{filename} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
            ) from exc
        del text
        shape, records = "lines", _json_lines(path, filename, limits)
    return _json_records(records, shape, records_path)


def _first_line_is_a_value(head: str, limits: Limits) -> bool:
    """Whether a large file without a JSON Lines name is one: its first line, a line within the
    limit with more after it, decodes alone."""
    first, newline, _ = head.lstrip().partition("\n")
    if not newline or len(first) > limits.line:
        return False
    try:
        json.loads(first)
    except ValueError:
        return False
    return True


def _json_records(records: Iterable[Any], shape: str, records_path: str | None) -> Analysis:
    typers: dict[str, ColumnTyper] = {}
    hashes: array[int] = array("Q")
    for record in records:
        if len(hashes) < TYPED_RECORDS:
            items = record.items() if isinstance(record, dict) else [("value", record)]
            for key, item in items:
                typer = typers.get(key)
                if typer is None and len(typers) < MAX_FIELDS:
                    typer = typers[key] = ColumnTyper()
                if typer is not None:
                    typer.add(item)
        canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        hashes.append(shingle_hash(canonical.encode()))
    return Analysis(
        kind="json",
        records=len(hashes),
        columns=len(typers) or None,
        fields=[Field(name, typer.type) for name, typer in typers.items()],
        details={"shape": shape, "records_path": records_path},
        record_hashes=hashes,
    )


# --- e-mail ----------------------------------------------------------------------------------


def _parse_email(path: Path, filename: str, limits: Limits) -> EmailMessage:
    if path.stat().st_size > limits.document:
        raise BadFile(
            f"{filename} is larger than {limits.document:,} bytes, the largest e-mail I read."
        )
    return BytesParser(policy=policy.default).parsebytes(path.read_bytes())


def _header_text(message: Message, name: str) -> str | None:
    try:
        value = message.get(name)
    except Exception:  # a malformed header must not stop the rest of the message
        return None
    return None if value is None else str(value)


def _addresses(message: Message, name: str) -> list[str]:
    try:
        header: Any = message.get(name)
        if header is None:
            return []
        return [address.addr_spec for address in header.addresses if address.addr_spec]
    except Exception:  # unparsable: take what looks like an address
        return EMAIL.findall(_header_text(message, name) or "")


def _email_date(message: Message) -> str | None:
    try:
        header: Any = message.get("date")
        moment = None if header is None else header.datetime
    except Exception:
        return None
    return None if moment is None else moment.isoformat()


def _attachments(message: EmailMessage) -> list[dict[str, Any]]:
    found = []
    for part in message.walk():
        if part.is_multipart():
            continue
        if part.get_content_disposition() != "attachment" and not part.get_filename():
            continue
        payload = part.get_payload(decode=True)
        found.append(
            {
                "filename": clean_filename(part.get_filename(), 120) or "unnamed",
                "content_type": part.get_content_type(),
                "size_bytes": len(payload) if isinstance(payload, bytes) else 0,
            }
        )
    return found


def _body_texts(message: EmailMessage) -> Iterator[str]:
    for part in message.walk():
        if part.is_multipart() or part.get_content_maintype() != "text":
            continue
        if part.get_content_disposition() == "attachment":
            continue
        try:
            text = part.get_content()
        except (LookupError, ValueError, AssertionError):  # an unknown or lying charset
            payload = part.get_payload(decode=True)
            text = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
        if not isinstance(text, str):
            continue
        yield _HTML_TAG.sub(" ", text) if part.get_content_subtype() == "html" else text


def _analyse_email(path: Path, filename: str, limits: Limits) -> Analysis:
    message = _parse_email(path, filename, limits)
    present = [name for name in _EMAIL_HEADERS if _header_text(message, name) is not None]
    if not {"from", "to", "subject"} & set(present):
        raise BadFile(
            f"{filename} does not look like an e-mail message: "
            "it has no From, To or Subject header."
        )
    addresses = {name: _addresses(message, name)[:MAX_LISTED] for name in ("from", "to", "cc")}
    kinds = {"date": "datetime", "subject": "text", "message-id": "text"}
    fields = [Field(name.title(), kinds.get(name, "address")) for name in present]
    attachments = _attachments(message)
    parts = sorted({part.get_content_type() for part in message.walk() if not part.is_multipart()})
    return Analysis(
        kind="email",
        records=1,
        columns=None,
        fields=fields,
        details={
            "subject": clean_text(_header_text(message, "subject"), MAX_HEADER_TEXT),
            **addresses,
            "date": _email_date(message),
            "attachments": attachments[:MAX_LISTED],
            "attachment_count": len(attachments),
            "parts": parts[:MAX_LISTED],
        },
        record_hashes=array("Q", [shingle_hash(path.read_bytes())]),
    )


# --- plain text ------------------------------------------------------------------------------


def _analyse_text(path: Path, filename: str, limits: Limits) -> Analysis:
    hashes: array[int] = array("Q")
    with path.open(encoding="utf-8-sig") as stream:
        for line in _bounded_lines(stream, filename, "a line", limits):
            stripped = line.strip()
            if stripped:
                hashes.append(shingle_hash(stripped.encode()))
    if not hashes:
        raise _no_data(filename)
    return Analysis(
        kind="text",
        records=len(hashes),
        columns=None,
        fields=[],
        details={"lines": len(hashes)},
        record_hashes=hashes,
    )


# --- text for entity extraction --------------------------------------------------------------


def texts_of(path: Path, kind: Kind, limits: Limits = DEFAULT_LIMITS) -> Iterator[str]:
    """The file's text as pieces to search: its lines (long ones in pieces), or an e-mail's
    headers and body."""
    if kind == "email":
        message = _parse_email(path, path.name, limits)
        for name in (*_ADDRESS_HEADERS, "subject", "date"):
            text = _header_text(message, name)
            if text:
                yield text
        yield from _body_texts(message)
        return
    with path.open(encoding="utf-8-sig", errors="replace") as stream:
        while piece := stream.readline(limits.line):
            yield piece
