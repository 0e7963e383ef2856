"""The catalog: a sentence for every step tidings knows, made specific by its context.

A built-in entry is a small function of the context, so that it can say "1 row" and "no rows",
"an invoice" and "a bank statement", and leave out what the worker did not send. Applications
add their own steps with ``register_step``; those win over the built-in ones.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Mapping
from typing import Final

from .constants import MAX_REASON_LENGTH, MAX_REGISTERED_TEMPLATE_LENGTH, MAX_STEP_LENGTH
from .context import Context
from .errors import TemplateError
from .fallback import humanize_step
from .humanize import (
    clean_label,
    clean_text,
    count_phrase,
    format_count,
    format_duration,
    format_percent,
    format_size,
    with_article,
)
from .safety import readable_reason
from .template import Template, parse_template

__all__ = [
    "BUILTIN_STEPS",
    "catalog_sentence",
    "generate_friendly_status",
    "normalize_step",
    "register_step",
]

logger = logging.getLogger(__name__)

Entry = Callable[[Context], str]

_BUILTIN: dict[str, Entry] = {}
_REGISTERED: dict[str, tuple[Template, str | None]] = {}


def _entry(*steps: str) -> Callable[[Entry], Entry]:
    def register(function: Entry) -> Entry:
        for step in steps:
            _BUILTIN[step] = function
        return function

    return register


# --- shared pieces ---------------------------------------------------------------------------

_DONE_KEYS: Final = ("bytes_done", "bytes_received", "bytes_sent", "bytes_read", "bytes")
_TOTAL_KEYS: Final = ("total_bytes", "bytes_total", "size_bytes", "file_size", "size")
_ROW_KEYS: Final = ("rows", "row_count", "total_rows")


def _your_file(c: Context) -> str:
    return c.filename() or "your file"


def _byte_progress(c: Context) -> str:
    """ "" or " (1.2 MB of 3.4 MB)", " (1.2 MB so far)", " (3.4 MB)".

    The part done is rounded down, so that 9.96 MB of 10 MB never reads "10 MB of 10 MB".
    """
    done, total = c.count(*_DONE_KEYS), c.count(*_TOTAL_KEYS)
    if done is not None and total is not None and total > 0:
        whole = format_size(total)
        if done >= total:
            return f" ({whole} of {whole})"
        part = format_size(done, at_most=True)
        return f" (almost all of {whole})" if part == whole else f" ({part} of {whole})"
    if done is not None:
        return f" ({format_size(done, at_most=True)} so far)"
    if total is not None:
        return f" ({format_size(total)})"
    return ""


def _rows(c: Context) -> int | None:
    return c.count(*_ROW_KEYS)


# --- the job's life ------------------------------------------------------------------------------


@_entry("queued", "pending", "waiting")
def _queued(c: Context) -> str:
    ahead = c.count("ahead", "jobs_ahead", "files_ahead")
    if ahead is None:
        position = c.count("position", "queue_position")
        ahead = None if position is None else max(position - 1, 0)
    if ahead is None:
        return "Waiting in line..."
    if ahead == 0:
        return "You're next in line..."
    return f"Waiting in line - {count_phrase(ahead, 'file')} ahead of yours..."


@_entry("started", "starting", "processing", "running")
def _started(c: Context) -> str:
    name = c.filename()
    return f"Working on {name}..." if name else "Working on your file..."


@_entry("uploading")
def _uploading(c: Context) -> str:
    return f"Uploading {_your_file(c)}{_byte_progress(c)}..."


@_entry("receiving")
def _receiving(c: Context) -> str:
    return f"Receiving {_your_file(c)}{_byte_progress(c)}..."


@_entry("received", "upload_complete", "uploaded")
def _received(c: Context) -> str:
    name = c.filename()
    size = c.count(*_TOTAL_KEYS, *_DONE_KEYS)
    shown = name or "your file"
    return f"Got {shown} ({format_size(size)})" if size is not None else f"Got {shown}"


@_entry("reading")
def _reading(c: Context) -> str:
    return f"Reading {_your_file(c)}{_byte_progress(c)}..."


@_entry("hashing", "fingerprinting")
def _hashing(c: Context) -> str:
    name = c.filename()
    subject = f"a fingerprint of {name}" if name else "your file's fingerprint"
    return f"Taking {subject}{_byte_progress(c)}..."


@_entry("validating", "validation")
def _validating(c: Context) -> str:
    name = c.filename()
    return f"Making sure {name} looks right..." if name else "Making sure everything looks right..."


@_entry("parsing")
def _parsing(c: Context) -> str:
    rows = _rows(c)
    if rows:
        return f"Making sense of {count_phrase(rows, 'row')}..."
    return f"Making sense of {_your_file(c)}..."


@_entry("retrying", "retry")
def _retrying(c: Context) -> str:
    attempt, limit = c.count("attempt"), c.count("max_attempts", "attempts")
    wait = c.seconds("retry_in_seconds", "retry_after", "delay_seconds")
    when = f" in {format_duration(wait)}" if wait is not None and wait >= 10 else ""
    if attempt and limit and attempt <= limit:
        return f"Trying again{when} (attempt {attempt} of {limit})..."
    return f"Trying again{when}..."


@_entry("cancelling", "cancel_requested")
def _cancelling(c: Context) -> str:
    return "Stopping as soon as I safely can..."


@_entry("cancelled", "canceled")
def _cancelled(c: Context) -> str:
    name = c.filename()
    return f"Cancelled - I stopped working on {name}" if name else "Cancelled - I stopped here"


@_entry("timeout", "timed_out")
def _timeout(c: Context) -> str:
    return "This took too long, so I stopped"


_FAILED_ROW_KEYS: Final = ("failed_rows", "rows_failed", "failed_count", "error_rows")


@_entry("complete", "completed", "done", "finished", "success")
def _complete(c: Context) -> str:
    """Success, unless the context says some rows failed: then it says how many."""
    name = c.filename()
    rows = _rows(c)
    failed = c.count(*_FAILED_ROW_KEYS)
    subject = name or "your file"
    if not failed:
        sentence = f"Done! I've processed {subject} successfully"
        return f"{sentence} ({count_phrase(rows, 'row')})" if rows is not None else sentence
    if rows and failed >= rows:
        if rows == 1:
            return f"Finished, but I couldn't process the only row in {subject}"
        return f"Finished, but I couldn't process any of the {format_count(rows)} rows in {subject}"
    share = f"{format_count(failed)} of {count_phrase(rows, 'row')}" if rows else None
    return f"Done - I've processed {subject}, but {share or count_phrase(failed, 'row')} failed"


@_entry("error", "failed", "failure")
def _error(c: Context) -> str:
    """The reason is shown only when it reads as a sentence for people (see ``safety``)."""
    reason = c.get("reason")
    if not isinstance(reason, str):
        reason = c.get("error")
    if isinstance(reason, str):
        readable = readable_reason(reason)
        text = clean_text(readable, MAX_REASON_LENGTH) if readable else None
        if text:
            return f"Oops, something went wrong: {text}"
    return "Oops, something went wrong"


# --- the ingestion pipeline -------------------------------------------------------------------


@_entry("initializing_streaming", "initializing")
def _initializing(c: Context) -> str:
    name = c.filename()
    return f"Getting ready to read {name}..." if name else "Getting ready to read your file..."


@_entry("duplicate_check")
def _duplicate_check(c: Context) -> str:
    name = c.filename()
    return (
        f"Checking if I've seen {name} before..."
        if name
        else ("Checking if I've seen this file before...")
    )


@_entry("duplicate_found")
def _duplicate_found(c: Context) -> str:
    original = c.filename("original_filename", "existing_filename", "matched_filename")
    if original:
        return f"Found an exact match - I've processed this before as {original}"
    return "Found an exact match - I've processed this before"


#: Below this share two files have too little in common to be called similar.
_SIMILAR_FROM: Final = 0.5


@_entry("near_duplicate_found")
def _near_duplicate_found(c: Context) -> str:
    """A near match is never "100% alike" (that is an exact match) nor "similar" at 2%.

    A score of 1 (or 100) reads "nearly identical": the worker did not call it an exact match.
    """
    score = c.ratio("similarity_score", "similarity", "score")
    other = c.filename("matched_filename", "original_filename", "existing_filename")
    kind = "a similar file"
    alike = None
    if score is not None and score >= 1:
        kind = "a nearly identical file"
    elif score == 0:
        kind = "a possible match"
    elif score is not None:
        alike = f"{format_percent(score)} alike"
        if score < _SIMILAR_FROM:
            kind = "a file with some overlap"
    detail = ", ".join(part for part in (other, alike) if part)
    if detail:
        return f"Found {kind} ({detail}) - let me compare them"
    return f"Found {kind} - let me compare them"


@_entry("content_duplicate_found")
def _content_duplicate_found(c: Context) -> str:
    rows = c.count("overlapping_rows", "duplicate_rows", "overlap_rows")
    if rows == 0:
        return "This data doesn't overlap with anything I already have"
    if rows:
        return f"This data overlaps with something I already have ({count_phrase(rows, 'row')})"
    return "This data overlaps with something I already have"


@_entry("delta_analysis_complete")
def _delta_analysis_complete(c: Context) -> str:
    new, known = c.count("new_rows"), c.count("existing_rows", "known_rows")
    if new is None:
        if known:  # nothing is said about new rows, so no difference is claimed either
            return f"I already know {count_phrase(known, 'row')} of this data"
        return "Spotted the differences in your data"
    if new == 0:
        if not known:
            return "No new rows in your data"
        if known == 1:
            return "No differences - I already know this one row"
        return f"No differences - I already know all {format_count(known)} rows"
    sentence = f"Spotted the differences: {count_phrase(new, 'new row')}"
    if known is None:
        return sentence
    return f"{sentence}, {format_count(known) if known else 'none'} I already know"


@_entry("field_detection")
def _field_detection(c: Context) -> str:
    columns = c.count("columns", "column_count", "fields", "field_count")
    name = c.filename()
    subject = name or "your data"
    if columns:
        return f"Analyzing the structure of {subject} ({count_phrase(columns, 'column')})..."
    return f"Analyzing the structure of {subject}..."


@_entry("platform_detection")
def _platform_detection(c: Context) -> str:
    platform = clean_label(c.get("platform"), name=True)
    platform = platform or clean_label(c.get("platform_name"), name=True)
    platform = platform or clean_label(c.get("source"), name=True)
    if platform:
        return f"Figuring out where this data came from - looks like {platform}"
    if c.get("platform_found") is False:
        return "This doesn't look like an export I know, so I'll read it as it is"
    return "Figuring out where this data came from..."


@_entry("document_classification")
def _document_classification(c: Context) -> str:
    kind = clean_label(c.get("document_type")) or clean_label(c.get("doc_type"))
    kind = kind or clean_label(c.get("kind"))
    if kind:
        return f"Understanding what type of document this is - looks like {with_article(kind)}"
    return "Understanding what type of document this is..."


@_entry("starting_transaction")
def _starting_transaction(c: Context) -> str:
    return "Setting up secure storage for your data..."


@_entry("storing", "saving")
def _storing(c: Context) -> str:
    name = c.filename()
    rows = _rows(c)
    if rows:
        return f"Saving {count_phrase(rows, 'row')} from {name or 'your file'}..."
    return f"Saving the details of {name}..." if name else "Saving your file details..."


@_entry("extracting", "extraction")
def _extracting(c: Context) -> str:
    done, total = c.count("rows_done", "rows_read", "processed_rows"), _rows(c)
    if done is not None and total:
        progress = f"{format_count(min(done, total))} of {count_phrase(total, 'row')}"
        return f"Reading through your data: {progress}..."
    if total:
        return f"Reading through {count_phrase(total, 'row')} of your data..."
    return "Reading through your data..."


@_entry("processing_decision")
def _processing_decision(c: Context) -> str:
    return "Processing your request..."


#: Entity kinds a worker may name, as a person reads them.
_ENTITY_KINDS: Final = {
    "email": "e-mail addresses", "e_mail": "e-mail addresses", "url": "links", "link": "links",
    "date": "dates", "amount": "amounts", "money": "amounts", "currency": "currencies",
    "phone": "phone numbers", "phone_number": "phone numbers", "name": "names",
    "person": "names", "address": "addresses", "company": "company names",
    "organization": "company names", "organisation": "company names", "iban": "IBANs",
    "account_number": "account numbers", "invoice_number": "invoice numbers",
}  # fmt: skip
_KIND_SPLIT_RE: Final = re.compile(r"[,;]\s*|\s+and\s+")
_MAX_KIND_LENGTH: Final = 40  # no kind is longer; a longer item is not looked up (nor cached)


def _entity_kinds(value: object) -> str | None:
    """["email", "date"] or "email, date" -> "e-mail addresses and dates"; unknown kinds unsaid."""
    if isinstance(value, str):
        items: list[object] = list(_KIND_SPLIT_RE.split(value[:200]))
    elif isinstance(value, list | tuple):
        items = list(value[:12])
    else:
        return None
    kinds: list[str] = []
    for item in items:
        if isinstance(item, str) and len(item) <= _MAX_KIND_LENGTH:
            key = normalize_step(item)
            kind = _ENTITY_KINDS.get(key) or _ENTITY_KINDS.get(key.removesuffix("es"))
            kind = kind or _ENTITY_KINDS.get(key.removesuffix("s"))
            if kind and kind not in kinds:
                kinds.append(kind)
    if not kinds:
        return None
    return kinds[0] if len(kinds) == 1 else f"{', '.join(kinds[:-1])} and {kinds[-1]}"


@_entry("entity_extraction")
def _entity_extraction(c: Context) -> str:
    """Names only the kinds of entity the context lists; a count says what it counts."""
    kinds = _entity_kinds(c.get("entity_types")) or _entity_kinds(c.get("kinds"))
    found = c.count("entities", "entity_count", "found")
    sentence = f"Picking out {kinds or 'the details in your data'}"
    return f"{sentence} - {format_count(found)} found so far..." if found else f"{sentence}..."


@_entry("entity_resolution")
def _entity_resolution(c: Context) -> str:
    entities = c.count("entities", "entity_count")
    if entities:
        return f"Matching {count_phrase(entities, 'entity')} across your data..."
    return "Matching entities across your data..."


@_entry("classification", "categorization")
def _classification(c: Context) -> str:
    transactions = c.count("transactions", "transaction_count", "rows")
    if transactions == 0:
        return "No transactions to categorize"
    if transactions:
        return f"Categorizing {count_phrase(transactions, 'transaction')}..."
    return "Categorizing your transactions..."


@_entry("enrichment", "enriching")
def _enrichment(c: Context) -> str:
    rows = _rows(c)
    if rows:
        return f"Adding context to {count_phrase(rows, 'row')}..."
    return "Adding context to your data..."


@_entry("finalizing")
def _finalizing(c: Context) -> str:
    return "Wrapping up..."


BUILTIN_STEPS: Final = frozenset(_BUILTIN)


# --- lookup -------------------------------------------------------------------------------------


_CAMEL_BOUNDARY_RE: Final = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


@functools.lru_cache(maxsize=1024)
def normalize_step(step: str) -> str:
    """ "Duplicate-Check ", "duplicateCheck" -> "duplicate_check": the lookup after an exact miss.

    Cached: unknown steps repeat with every event of a job, and this is on their path.
    """
    step = _CAMEL_BOUNDARY_RE.sub("_", step.strip())
    return "_".join(step.lower().replace("-", " ").replace(".", " ").split())


def register_step(step: str, template: str, *, default: str | None = None) -> None:
    """Give ``step`` a sentence: a template with ``{key}`` placeholders filled from the context.

    The registered sentence replaces a built-in one for the same step. When the context lacks
    a value the template needs, ``default`` is used, or else the humane reading of the step.
    Placeholders: ``{filename}``, ``{rows:row}`` ("1 row", "no rows"), ``{people:person/people}``,
    ``{document_type:a}`` ("an invoice"). Raises TemplateError for a malformed template.

        register_step("ocr_pass", "Reading the text in {filename}...", default="Reading text...")
    """
    if not isinstance(step, str) or not step.strip() or len(step) > MAX_STEP_LENGTH:
        raise TemplateError(f"a step is a non-empty string of at most {MAX_STEP_LENGTH} characters")
    parsed = parse_template(template, max_length=MAX_REGISTERED_TEMPLATE_LENGTH)
    if default is not None:
        parsed_default = parse_template(default, max_length=MAX_REGISTERED_TEMPLATE_LENGTH)
        if parsed_default.keys:
            raise TemplateError("a default sentence has no placeholders")
        default = parsed_default.source
    _REGISTERED[step] = (parsed, default)
    normalized = normalize_step(step)
    if normalized != step:
        _REGISTERED[normalized] = (parsed, default)


#: Built-in sentences already written, by step and context (``Context.key``): a worker reports
#: a step many times with the same context, and an entry reads the context key by key, most of
#: the cost of a sentence. Entries are pure and never change, so nothing here goes stale (a
#: registered step is looked up first, on every call); emptied when full.
_WRITTEN: dict[tuple[str, object], str] = {}
_MAX_WRITTEN: Final = 1024


def _lookup(step: str, c: Context) -> str | None:
    registered = _REGISTERED.get(step)
    if registered is not None:
        template, default = registered
        return template.render(c) or default or humanize_step(step)
    entry = _BUILTIN.get(step)
    if entry is None:
        return None
    key = c.key()
    if key is None:
        return entry(c)
    sentence = _WRITTEN.get((step, key))
    if sentence is None:
        sentence = entry(c)
        if len(_WRITTEN) >= _MAX_WRITTEN:
            _WRITTEN.clear()
        _WRITTEN[step, key] = sentence
    return sentence


def catalog_sentence(step: str, context: Context) -> str | None:
    """The registered or built-in sentence for ``step``, or None when the catalog has none."""
    if len(step) > MAX_STEP_LENGTH:
        return None  # no catalog step is this long; do not spend time normalizing it
    sentence = _lookup(step, context)
    if sentence is None:
        normalized = normalize_step(step)
        if normalized != step:
            sentence = _lookup(normalized, context)
    return sentence


def generate_friendly_status(step: str, context: Mapping[str, object] | None = None) -> str:
    """The sentence a person sees for ``step``: synchronous, pure, a few microseconds.

    The catalog's sentence (registered, then built-in) made specific by ``context``, else the
    humane reading of the step name. Unknown keys are ignored and wrong types never raise.
    """
    if not isinstance(step, str):
        return humanize_step(step)
    try:
        sentence = catalog_sentence(step, Context(context))
    except Exception:  # a bug in an entry must not stop a progress update
        logger.exception("the sentence for step %r failed; using the plain one", step[:64])
        sentence = None
    return sentence if sentence is not None else humanize_step(step)
