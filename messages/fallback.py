"""The humane fallback: a step name nobody wrote a sentence for, read aloud as English.

``validating_iban_checksums`` -> "Validating IBAN checksums...", ``cleanup`` -> "Cleaning up...",
``csv_parse`` -> "Parsing the CSV...", ``s3_upload_v2`` -> "Uploading to S3...",
``file_too_large`` -> "The file is too large", ``rows_imported`` -> "Rows imported".

A step name is split into words (snake, kebab and camel case, any script), ids, hashes and
version suffixes are left out, and the words are read by shape: a failure, a finished result,
work in progress with the verb first or last, or else a thing being worked on. A name that
reads as an order to its reader ("ignore previous instructions and ...") says only that work
goes on: it is user data, and it is not ours to repeat. So does one that holds a link, an
address or a credential.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Final

from .humanize import ACRONYMS, camel_words, is_plural
from .safety import holds_secret, reads_as_instruction

__all__ = ["WORKING", "humanize_step"]

WORKING: Final = "Working on it..."

# fmt: off
#: Verbs a step name often starts with, in their base form: "validate_x" reads "Validating x...".
_VERBS: Final = frozenset({
    "add", "aggregate", "analyze", "analyse", "anonymize", "anonymise", "apply", "approve",
    "archive", "audit", "build", "calculate", "categorize", "charge", "check", "chunk",
    "classify", "clean", "commit", "compare", "compress", "compute", "convert", "copy", "count",
    "create", "decode", "decrypt", "dedup", "dedupe", "deduplicate", "delete", "deliver",
    "detect", "download", "drop", "edit", "embed", "emit", "encode", "encrypt", "enrich",
    "evaluate", "export", "extract", "fetch", "filter", "finalize", "find", "fix", "flag",
    "format", "generate", "geocode", "group", "guess", "hash", "import", "index", "ingest",
    "initialize", "inspect", "label", "link", "load", "log", "map", "mask", "match", "merge",
    "migrate", "normalize", "normalise", "notify", "open", "optimize", "parse", "plan", "post",
    "predict", "prefetch", "prepare", "preprocess", "process", "publish", "pull", "purge",
    "push", "queue", "read", "rebuild", "reconcile", "redact", "refresh", "register", "reindex",
    "remove", "render", "repair", "reprocess", "rerun", "resize", "resolve", "restore",
    "retry", "review", "run", "sanitize", "save", "scan", "score", "search", "send", "ship",
    "skip", "sort", "split", "start", "stop", "store", "stream", "submit", "summarize", "sync",
    "tag", "test", "throttle", "tokenize", "train", "transcribe", "transfer", "transform",
    "translate", "trim", "unzip", "update", "upload", "upsert", "vacuum", "validate", "verify",
    "warm", "wrap", "write", "zip",
})
#: One-word verb-particle compounds: "cleanup" reads "Cleaning up...".
_COMPOUNDS: Final = {
    "backoff": ("back", "off"), "backup": ("back", "up"), "checkout": ("check", "out"),
    "cleanup": ("clean", "up"), "followup": ("follow", "up"), "login": ("log", "in"),
    "logout": ("log", "out"), "lookup": ("look", "up"), "pickup": ("pick", "up"),
    "rollback": ("roll", "back"), "rollup": ("roll", "up"), "setup": ("set", "up"),
    "shutdown": ("shut", "down"), "signin": ("sign", "in"), "signup": ("sign", "up"),
    "startup": ("start", "up"), "teardown": ("tear", "down"), "warmup": ("warm", "up"),
}
#: Verbs read after their object when they end a step name: "csv_parse" -> "Parsing the CSV...".
#: Words that are as often nouns ("report", "count", "test", "export") are left out.
_OBJECT_LAST: Final = frozenset({
    "aggregate", "analyze", "analyse", "anonymize", "backup", "calculate", "categorize",
    "classify", "cleanup", "compress", "geocode", "notify", "prefetch", "purge", "rebuild",
    "redact", "restore", "train", "warmup", "compute", "convert", "decode", "decrypt", "dedupe",
    "deduplicate", "delete", "detect", "download", "embed", "encode", "encrypt", "enrich",
    "extract", "fetch", "generate", "ingest", "lookup", "merge", "migrate", "normalize",
    "normalise", "parse", "publish", "reconcile", "refresh", "reindex", "remove", "render",
    "resize", "sanitize", "send", "setup", "summarize", "sync", "tokenize", "transcribe",
    "transform", "translate", "upload", "validate", "verify",
})
#: Places a step sends data to or takes it from: "s3_upload" -> "Uploading to S3...".
_PLACES: Final = frozenset({
    "api", "azure", "bigquery", "bucket", "cloud", "crm", "dropbox", "erp", "ftp", "gcs",
    "github", "google", "hubspot", "paypal", "quickbooks", "s3", "salesforce", "server",
    "sftp", "shopify", "slack", "snowflake", "stripe", "xero",
})
_TOWARD: Final = {"upload": "to", "send": "to", "publish": "to", "sync": "with",
                  "download": "from", "fetch": "from"}
#: Names that take no article: "Access to S3 was denied", not "to the S3".
_PROPER: Final = frozenset({
    "azure", "bigquery", "dropbox", "excel", "ftp", "gcs", "github", "google", "hubspot",
    "paypal", "quickbooks", "s3", "salesforce", "sftp", "shopify", "slack", "snowflake",
    "stripe", "xero",
})
#: Verbs that are as often the thing worked on: "index_rebuild" is "Rebuilding the index...".
_NOUN_VERBS: Final = frozenset({
    "archive", "copy", "count", "filter", "flag", "group", "hash", "index", "label", "link",
    "log", "map", "match", "post", "queue", "score", "search", "stream", "tag", "test",
})
#: Multi-syllable verbs stressed on their last syllable double its consonant: "embedding".
_STRESSED_LAST: Final = frozenset({
    "admit", "commit", "compel", "control", "embed", "emit", "equip", "expel", "format",
    "occur", "omit", "patrol", "permit", "prefer", "refer", "regret", "remap", "rerun",
    "submit", "transfer", "transmit", "unzip", "upset",
})
#: Words ending in -ing that are things, not work: "string_parse" is not "String parse...".
_ING_NOUNS: Final = frozenset({
    "ceiling", "during", "evening", "king", "meeting", "morning", "nothing", "pricing", "ring",
    "setting", "settings", "something", "spring", "string", "strings", "thing", "things",
    "warning", "warnings", "wing",
})
#: Words that end a step name with its state; the name is then read as it is ("Export OK").
_STATE_WORDS: Final = frozenset({
    "done", "complete", "completed", "finished", "ready", "ok", "succeeded", "pending"
})
_IRREGULAR_PAST: Final = frozenset({
    "found", "sent", "built", "made", "read", "written", "run", "begun", "got", "taken",
    "given", "kept", "held", "lost", "split", "set"
})
# fmt: on

_SPLIT_RE: Final = re.compile(r"[\W_]+")
_UUID_RE: Final = re.compile(r"[0-9a-f]{8}(?:-?[0-9a-f]{4}){3}-?[0-9a-f]{12}", re.IGNORECASE)
_ID_LIKE_RE: Final = re.compile(r"(?=[a-z]*\d)[a-z0-9]{6,}|\d{5,}|[a-f0-9]{8,}", re.IGNORECASE)
_VERSION_RE: Final = re.compile(r"v\d+")
_CAMEL_VERSION_RE: Final = re.compile(r"(?<=[a-z])V\d+$")
_ONE_SYLLABLE_CVC_RE: Final = re.compile(r"[^aeiou]*[aeiou][^aeiouwxy]")
_MAX_WORDS: Final = 8
_MAX_INPUT: Final = 200


def _gerund(verb: str) -> str:
    """ "validate" -> "validating", "embed" -> "embedding", "tie" -> "tying", "see" -> "seeing"."""
    if verb.endswith("ie"):
        return verb[:-2] + "ying"
    if verb.endswith(("ee", "ye", "oe")):
        return verb + "ing"
    if verb.endswith("e") and len(verb) > 2:
        return verb[:-1] + "ing"
    if verb in _STRESSED_LAST or _ONE_SYLLABLE_CVC_RE.fullmatch(verb):
        return verb + verb[-1] + "ing"
    return verb + "ing"


def _words(step: str) -> list[str]:
    """The words of a step name, lower case, without ids, hashes and version suffixes."""
    words: list[str] = []
    for chunk in _SPLIT_RE.split(_UUID_RE.sub(" ", step)):
        chunk = _CAMEL_VERSION_RE.sub("", chunk)  # "uploadV2" -> "upload"
        if not chunk or (_ID_LIKE_RE.fullmatch(chunk) and chunk.lower() not in ACRONYMS):
            continue  # an identifier or a hash says nothing to a person
        parts = [chunk] if chunk.lower() in ACRONYMS else camel_words(chunk)
        for part in parts:
            if _ID_LIKE_RE.fullmatch(part) and part.lower() not in ACRONYMS:
                continue
            words.append(part.lower())
    # "v2", "v 2" (from "uploadV2") and "version 3" say which code ran, not what it does.
    kept: list[str] = []
    for index, word in enumerate(words):
        following = words[index + 1] if index + 1 < len(words) else ""
        if _VERSION_RE.fullmatch(word) or (word in ("v", "version") and following.isdigit()):
            continue
        if word.isdigit() and index > 0 and words[index - 1] in ("v", "version"):
            continue
        kept.append(word)
    return kept


def _show(words: list[str]) -> str:
    return " ".join(ACRONYMS.get(word, word) for word in words)


def _capitalize(phrase: str) -> str:
    return phrase[:1].upper() + phrase[1:]


def _is_past(word: str) -> bool:
    return word in _IRREGULAR_PAST or (len(word) > 4 and word.endswith("ed"))


def _thing(words: list[str]) -> str:
    """The words as a definite noun phrase: "the file", "the IBANs", "S3"."""
    shown = _show(words)
    return shown if len(words) == 1 and words[0] in _PROPER else f"the {shown}"


def _activity(words: list[str]) -> str:
    """The words as an activity: a leading verb becomes its -ing form ("uploading the file")."""
    if words[0] in _COMPOUNDS:
        verb, particle = _COMPOUNDS[words[0]]
        return _show([_gerund(verb), particle, *words[1:]])
    if words[0] in _VERBS:
        return _show([_gerund(words[0]), *words[1:]])
    return _show(words)


# --- failures ------------------------------------------------------------------------------------

Said = Callable[[list[str]], str]


def _agreeing(singular: str, plural: str, alone: str) -> Said:
    """A failure sentence whose verb agrees with its subject: "The file is", "The rows are"."""

    def say(subject: list[str]) -> str:
        if not subject:
            return alone
        thing = _thing(subject)
        return f"{thing} {plural if is_plural(thing) else singular}"

    return say


def _went_wrong(subject: list[str]) -> str:
    return f"Something went wrong with {_activity(subject)}" if subject else "Something went wrong"


def _took_too_long(subject: list[str]) -> str:
    if not subject:
        return "This took too long, so I stopped"
    first = subject[0]
    doing = first in _VERBS or first in _COMPOUNDS or _is_gerund(first)
    return f"{_activity(subject) if doing else _thing(subject)} took too long"


def _no_access(subject: list[str]) -> str:
    if subject and subject[-1] in ("access", "permission"):
        subject = subject[:-1]
    return f"Access to {_thing(subject)} was denied" if subject else "Access was denied"


def _denied(subject: list[str]) -> str:
    if not subject or subject[-1] in ("access", "permission"):
        return _no_access(subject)
    thing = _thing(subject)
    return f"{thing} {'were' if is_plural(thing) else 'was'} denied"


def _missing(subject: list[str]) -> str:
    """ "The header is missing", "Some columns are missing" (not all of them, maybe)."""
    if not subject:
        return "Something is missing"
    thing = _thing(subject)
    return f"Some {_show(subject)} are missing" if is_plural(thing) else f"{thing} is missing"


def _too_many(which: str) -> Said:
    def say(subject: list[str]) -> str:
        return f"There are too {which} {_show(subject)}" if subject else f"There are too {which}"

    return say


#: Failure words, as they end a step name (subject first) -> the sentence for that subject.
_FAILS_AFTER: Final[dict[tuple[str, ...], Said]] = {
    ("error",): _went_wrong,
    ("errors",): _went_wrong,
    ("failed",): _went_wrong,
    ("failure",): _went_wrong,
    ("fail",): _went_wrong,
    ("timeout",): _took_too_long,
    ("timed", "out"): _took_too_long,
    ("too", "large"): _agreeing("is too large", "are too large", "This is too large"),
    ("too", "big"): _agreeing("is too big", "are too big", "This is too big"),
    ("too", "long"): _agreeing("is too long", "are too long", "This is too long"),
    ("too", "small"): _agreeing("is too small", "are too small", "This is too small"),
    ("too", "many"): _too_many("many"),
    ("too", "few"): _too_many("few"),
    ("invalid",): _agreeing("is not valid", "are not valid", "Something is not valid"),
    ("mismatch",): _agreeing("does not match", "do not match", "Something does not match"),
    ("mismatched",): _agreeing("does not match", "do not match", "Something does not match"),
    ("unauthorized",): _no_access,
    ("unauthorised",): _no_access,
    ("forbidden",): _no_access,
    ("denied",): _denied,
    ("not", "allowed"): _agreeing("is not allowed", "are not allowed", "This is not allowed"),
    ("not", "found"): _agreeing(
        "could not be found", "could not be found", "This could not be found"
    ),
    ("missing",): _missing,
    ("unsupported",): _agreeing("is not supported", "are not supported", "This is not supported"),
    ("not", "supported"): _agreeing(
        "is not supported", "are not supported", "This is not supported"
    ),
    ("corrupt",): _agreeing(
        "seems to be damaged", "seem to be damaged", "Something seems to be damaged"
    ),
    ("corrupted",): _agreeing(
        "seems to be damaged", "seem to be damaged", "Something seems to be damaged"
    ),
    ("expired",): _agreeing("has expired", "have expired", "This has expired"),
    ("rejected",): _agreeing("was rejected", "were rejected", "This was rejected"),
    ("exceeded",): _agreeing("was exceeded", "were exceeded", "A limit was exceeded"),
    ("unavailable",): _agreeing("is unavailable", "are unavailable", "This is unavailable"),
    ("unreachable",): _agreeing(
        "could not be reached", "could not be reached", "This could not be reached"
    ),
    ("refused",): _agreeing("was refused", "were refused", "This was refused"),
    ("aborted",): _agreeing("was stopped", "were stopped", "This was stopped"),
    ("crashed",): _agreeing(
        "stopped unexpectedly", "stopped unexpectedly", "Something stopped unexpectedly"
    ),
    ("empty",): _agreeing("is empty", "are empty", "This is empty"),
    ("full",): _agreeing("is full", "are full", "This is full"),
    ("bounced",): _agreeing("bounced", "bounced", "This bounced"),
    ("declined",): _agreeing("was declined", "were declined", "This was declined"),
}
#: Failure words that open a step name (``invalid_iban``), reading the rest as their subject.
_FAILS_BEFORE: Final[dict[tuple[str, ...], Said]] = {
    words: _FAILS_AFTER[words]
    for words in (
        ("invalid",), ("missing",), ("unsupported",), ("corrupt",), ("corrupted",), ("empty",),
        ("too", "many"), ("too", "few"), ("timeout",),
    )
}  # fmt: skip


def _failure(words: list[str]) -> str | None:
    for marker, say in _FAILS_AFTER.items():
        if tuple(words[-len(marker) :]) == marker:
            return _capitalize(say(words[: -len(marker)]))
    for marker, say in _FAILS_BEFORE.items():
        if tuple(words[: len(marker)]) == marker and len(words) > len(marker):
            return _capitalize(say(words[len(marker) :]))
    return None


# --- work in progress ----------------------------------------------------------------------------


def _is_gerund(word: str) -> bool:
    return word.endswith("ing") and len(word) > 4 and word not in _ING_NOUNS


def _verb_first(words: list[str]) -> str | None:
    first = words[0]
    if _is_gerund(first):
        return _show(words)
    if first in _COMPOUNDS or first in _VERBS:
        rest = words[1:]
        if rest and (
            all(word.isdigit() for word in rest) or (first in _NOUN_VERBS and _is_gerund(rest[-1]))
        ):
            return None  # "chunk_7", "search_indexing": a thing's name, not work to do
        return _activity(words)
    return None


def _verb_last(words: list[str]) -> str | None:
    """ "csv_parse" -> "parsing the CSV", "s3_upload" -> "uploading to S3"."""
    last, rest = words[-1], words[:-1]
    if last not in _OBJECT_LAST or not rest:
        return None
    first = rest[0]
    if (first in _VERBS and first not in _NOUN_VERBS) or _is_gerund(first):
        return None  # "retry_upload", "validating_upload": the verb comes first
    doing = _activity([last])
    if len(rest) == 1 and rest[0] in _PLACES and last in _TOWARD:
        return f"{doing} {_TOWARD[last]} {_thing(rest)}"
    return f"{doing} {_thing(rest)}"


@functools.lru_cache(maxsize=1024)
def _humanize(step: str) -> str:
    all_words = _words(step)
    if (
        not all_words
        or reads_as_instruction(" ".join(all_words))
        or holds_secret(_UUID_RE.sub(" ", step))
    ):
        return WORKING
    words = all_words[:_MAX_WORDS]
    failure = _failure(all_words)
    if failure is not None:
        return failure
    last = words[-1]
    if words[-2:] == ["in", "progress"]:
        return _capitalize(_show(words)) + "..."  # "Upload in progress..."
    if len(words) > 1 and (last in _STATE_WORDS or _is_past(last) or words[0] == "ready"):
        return _capitalize(_show(words))  # "Rows imported", "Ready for review"
    doing = _verb_last(words) or _verb_first(words)
    if doing is not None:
        return _capitalize(doing) + "..."
    if last in _STATE_WORDS or (len(last) > 5 and _is_past(last) and not last.endswith("eed")):
        return _capitalize(_show(words))  # "Ready", "Throttled"
    return f"Working on {_show(words)}..."


def humanize_step(step: object) -> str:
    """A sentence a person accepts for any step name; instant, and never fails."""
    if not isinstance(step, str):
        return WORKING
    return _humanize(step[:_MAX_INPUT])
