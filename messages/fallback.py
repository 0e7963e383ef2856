"""The humane fallback: a step name nobody wrote a sentence for, read aloud.

``validating_iban_checksums`` -> "Validating IBAN checksums...", ``validate_iban`` ->
"Validating IBAN...", ``iban_validation_complete`` -> "IBAN validation complete",
``rows_imported`` -> "Rows imported", ``ocr_pass`` -> "Working on OCR pass...".
Known acronyms keep their capitals; identifiers and hashes inside a step name are left out.
"""

from __future__ import annotations

import functools
import re
from typing import Final

__all__ = ["ACRONYMS", "humanize_step"]

WORKING: Final = "Working on it..."

# fmt: off
#: Words shown in capitals (or in their own spelling) wherever they appear in a step name.
_SPELLINGS: Final = (
    "ACH", "AI", "AML", "API", "APIs", "AWS", "BAI2", "BIC", "CAMT", "CRM", "CSV", "CSVs", "DB",
    "EDI", "EFT", "EML", "ERP", "ETL", "FTP", "FX", "GL", "GPS", "GST", "HTML", "HTTP", "HTTPS",
    "IBAN", "IBANs", "ID", "IDs", "IMAP", "IP", "ISO", "JSON", "JWT", "KYC", "LLM", "MD5",
    "MIME", "MT940", "NACHA", "OK", "OCR", "OFX", "PDF", "PDFs", "PII", "QBO", "QIF", "QR", "S3",
    "SDK", "SEPA", "SFTP", "SHA", "SHA1", "SHA256", "SKU", "SKUs", "SMTP", "SQL", "SSN",
    "SWIFT", "TIN", "TSV", "UI", "URL", "URLs", "UTC", "UTF8", "UUID", "VAT", "VIN", "XLS",
    "XLSX", "XML", "YAML", "ZIP", "GitHub", "PayPal", "QuickBooks", "Stripe", "Xero", "Shopify",
    "Excel", "Google"
)
ACRONYMS: Final[dict[str, str]] = {word.lower(): word for word in _SPELLINGS}

# Verbs a step name often starts with, in their base form: "validate_x" reads "Validating x...".
_VERBS: Final = frozenset({
    "add", "aggregate", "analyze", "analyse", "apply", "archive", "audit", "backup", "build",
    "calculate", "categorize", "check", "classify", "clean", "cleanup", "commit", "compare",
    "compress", "compute", "convert", "copy", "count", "create", "decode", "decrypt", "dedupe",
    "deduplicate", "delete", "deliver", "detect", "download", "embed", "encode", "encrypt",
    "enrich", "evaluate", "export", "extract", "fetch", "filter", "finalize", "find", "fix",
    "flag", "format", "generate", "group", "hash", "import", "index", "ingest", "initialize",
    "inspect", "label", "link", "load", "lookup", "map", "match", "merge", "migrate",
    "normalize", "notify", "open", "optimize", "parse", "plan", "post", "prepare", "process",
    "publish", "push", "queue", "read", "rebuild", "reconcile", "refresh", "register",
    "reindex", "remove", "render", "repair", "resize", "resolve", "retry", "run", "sanitize",
    "save", "scan", "score", "search", "send", "sort", "split", "start", "stop", "store",
    "stream", "submit", "summarize", "sync", "tag", "test", "tokenize", "train", "transcribe",
    "transform", "translate", "trim", "update", "upload", "upsert", "validate", "verify",
    "warm", "wrap", "write", "zip"
})
_DOUBLE_FINAL: Final = frozenset({
    "plan", "run", "scan", "split", "stop", "tag", "trim", "wrap", "zip", "map"
})
_DONE_WORDS: Final = frozenset({
    "done", "complete", "completed", "finished", "ready", "ok", "succeeded"
})
_FAILED_WORDS: Final = frozenset({"error", "errors", "failed", "failure"})
_IRREGULAR_PAST: Final = frozenset({
    "found", "sent", "built", "made", "read", "written", "run", "begun", "got", "taken",
    "given", "kept", "held", "lost", "split", "set"
})
# fmt: on

_SPLIT_RE: Final = re.compile(r"[^A-Za-z0-9]+")
_CAMEL_RE: Final = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+[A-Za-z]*")
_UUID_RE: Final = re.compile(r"[0-9a-f]{8}(?:-?[0-9a-f]{4}){3}-?[0-9a-f]{12}", re.IGNORECASE)
_ID_LIKE_RE: Final = re.compile(r"(?=[a-z]*\d)[a-z0-9]{6,}|\d{5,}|[a-f0-9]{8,}", re.IGNORECASE)
_MAX_WORDS: Final = 8
_MAX_INPUT: Final = 200


def _gerund(verb: str) -> str:
    if verb.endswith("ie"):
        return verb[:-2] + "ying"
    if verb.endswith(("ee", "ye", "oe")):
        return verb + "ing"
    if verb.endswith("e") and len(verb) > 2:
        return verb[:-1] + "ing"
    if verb in _DOUBLE_FINAL:
        return verb + verb[-1] + "ing"
    return verb + "ing"


def _words(step: str) -> list[str]:
    words: list[str] = []
    for chunk in _SPLIT_RE.split(_UUID_RE.sub(" ", step[:_MAX_INPUT])):
        if not chunk or (_ID_LIKE_RE.fullmatch(chunk) and chunk.lower() not in ACRONYMS):
            continue  # an identifier or a hash says nothing to a person
        parts = [chunk] if chunk.lower() in ACRONYMS else _CAMEL_RE.findall(chunk)
        for part in parts:
            if _ID_LIKE_RE.fullmatch(part) and part.lower() not in ACRONYMS:
                continue  # an identifier or a hash says nothing to a person
            words.append(part.lower())
    return words[:_MAX_WORDS]


def _show(words: list[str]) -> str:
    return " ".join(ACRONYMS.get(word, word) for word in words)


def _capitalize(phrase: str) -> str:
    return phrase[:1].upper() + phrase[1:]


def _is_past(word: str) -> bool:
    return word in _IRREGULAR_PAST or (len(word) > 4 and word.endswith("ed"))


@functools.lru_cache(maxsize=1024)
def _humanize(step: str) -> str:
    words = _words(step)
    if not words:
        return WORKING
    first, last = words[0], words[-1]
    if len(words) > 1 and last in _FAILED_WORDS:
        rest = words[:-1]
        if rest[0] in _VERBS:
            rest = [_gerund(rest[0]), *rest[1:]]
        return f"Something went wrong with {_show(rest)}"
    if len(words) > 1 and (last in _DONE_WORDS or _is_past(last)):
        return _capitalize(_show(words))
    if first.endswith("ing") and len(first) > 4:
        return _capitalize(_show(words)) + "..."
    if first in _VERBS:
        return _capitalize(_show([_gerund(first), *words[1:]])) + "..."
    if last in _DONE_WORDS:
        return _capitalize(_show(words))
    return f"Working on {_show(words)}..."


def humanize_step(step: object) -> str:
    """A sentence a person accepts for any step name; instant, and never fails."""
    if not isinstance(step, str):
        return WORKING
    return _humanize(step[:_MAX_INPUT])
