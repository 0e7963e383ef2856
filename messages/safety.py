"""What must never reach a sentence: secrets, links, markup, jargon, and orders to the reader.

Context values, step names and LLM templates are written by machines and, through them, by
whoever sent the file. The humanizers in ``humanize`` and ``fallback`` ask these questions
before they show anything; a value that fails one is withheld whole rather than trimmed,
because what is left of a half-removed secret or instruction is still not a sentence.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "EMAIL_RE",
    "URL_RE",
    "holds_error_report",
    "holds_secret",
    "readable_reason",
    "reads_as_instruction",
    "strip_markdown",
]

# A link in any scheme (https, postgres, s3, ...), also glued to a word ("to_https://..."),
# or a bare www. host.
URL_RE: Final = re.compile(
    r"(?<![A-Za-z0-9+.-])[A-Za-z][A-Za-z0-9+.-]*://[^\s]*|\bwww\.[^\s]+", re.IGNORECASE
)
EMAIL_RE: Final = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Credentials: well-known token shapes (OpenAI/Stripe "sk-", GitHub "ghp_", Slack "xoxb-", AWS
# "AKIA", JWTs), "password=...", "Bearer ...", and a long run of letters and digits mixed the
# way keys and base64 are (snake_case words are not: "_" and "-" end such a run).
_SECRET_RE: Final = re.compile(
    r"\b(?:sk|pk|rk)-[A-Za-z0-9_-]{16,}"
    r"|\b(?:ghp|gho|ghs|ghu|glpat|xox[abprs])[-_][A-Za-z0-9_-]{16,}"
    r"|\b(?:AKIA|ASIA)[A-Z0-9]{16}\b|\beyJ[A-Za-z0-9_-]{10,}"
    r"|(?i:\b(?:password|passwd|pwd|passphrase|secret|token|api[ _-]?key|apikey|auth"
    r"|authorization|access[ _-]?key|private[ _-]?key)\s*[=:]\s*\S+|\bbearer\s+\S{8,})"
    r"|(?=[A-Za-z0-9+/]*\d)(?=[A-Za-z0-9+/]*[A-Za-z])[A-Za-z0-9+/]{24,}"
)
# Sentences that give the reader an order or try to steer whatever reads them next.
_INSTRUCTION_RE: Final = re.compile(
    r"\b(?:ignore|disregard|forget|override|bypass)\b.{0,40}"
    r"\b(?:instructions?|prompts?|rules|above|previous|prior|everything|guidelines)\b"
    r"|\b(?:system prompt|you are now|act as|pretend|jailbreak|developer mode)\b"
    r"|\b(?:say|type|enter|reply|respond|print|output|write|click|tap|visit|call|send|share"
    r"|provide|give|confirm|paste|submit)\b.{0,30}\b(?:password|passcode|pin|credentials?"
    r"|token|secret|card|cvv|ssn|code|here|now|hacked|pwned)\b"
    r"|\bplease\b|\byou must\b|\byour (?:password|credentials|card|pin|account number)\b",
    re.IGNORECASE | re.DOTALL,
)
_MARKDOWN_LINK_RE: Final = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MARKDOWN_MARKS_RE: Final = re.compile(r"\*+|`+|~~|^\s*(?:#{1,6}|>)\s+")
_MARKDOWN_UNDERLINE_RE: Final = re.compile(r"(?<!\w)__|__(?!\w)")
# "KeyError: 'amount'", "psycopg2.OperationalError: ...": a class name is jargon to a person.
_EXCEPTION_PREFIX_RE: Final = re.compile(
    r"^\s*(?:[A-Za-z_][\w]*\.)*[A-Z]\w*(?:Error|Exception|Warning|Exit|Interrupt|Fault)\b:?\s*"
)
_EXCEPTION_NAME_RE: Final = re.compile(r"\b[A-Z]\w*(?:Error|Exception|Fault)\b|\bNoneType\b")
_TRACE_RE: Final = re.compile(r"\bTraceback \(most recent|\bFile \"|\n\s+at ")
# Marks of code or machine output inside an error reason: snake_case, calls, addresses,
# paths, errno codes, key=value pairs, braces and brackets. A hex code as an aside in
# brackets ("byte 14 (0xE9) cannot be read") is a detail a sentence for people may give.
_CODE_RE: Final = re.compile(
    r"[A-Za-z0-9]_[A-Za-z0-9]|\w\(\)|\w\.\w+\(|(?<!\()\b0x[0-9a-f]+|\[Errno|\berrno\b|[{}<>=;|\\]"
    r"|(?:^|[\s'\"(])/\w+/|\b\d{1,3}(?:\.\d{1,3}){3}\b|:\d{2,5}\b|\bnull\b|\bundefined\b",
    re.IGNORECASE,
)
# The wording of a language runtime's own errors: true, but written for programmers.
_RUNTIME_JARGON_RE: Final = re.compile(
    r"\b(?:object|attribute|subscriptable|iterable|callable|unhashable|operand|indices"
    r"|index out of range|division by zero|is not defined|positional argument|keyword argument"
    r"|segmentation fault|stack overflow|core dumped|nil pointer|null pointer|undefined method)\b",
    re.IGNORECASE,
)
_WORD_RE: Final = re.compile(r"[^\W\d_]{2,}")


def strip_markdown(text: str, *, underscores: bool = True) -> str:
    """``**bold** [click](http://x)`` -> ``bold click``: emphasis dropped, a link keeps its text.

    ``underscores=False`` keeps ``__``, which in a filename (``__init__.py``) is its own name.
    """
    if not any(mark in text for mark in "*`~_#>[]"):
        return text
    text = _MARKDOWN_MARKS_RE.sub("", _MARKDOWN_LINK_RE.sub(r"\1", text))
    if underscores:
        text = _MARKDOWN_UNDERLINE_RE.sub("", text)
    return " ".join(text.split())


def holds_secret(text: str) -> bool:
    """Whether ``text`` holds a link, an e-mail address or anything that looks like a credential."""
    return bool(URL_RE.search(text) or EMAIL_RE.search(text) or _SECRET_RE.search(text))


def holds_error_report(text: str) -> bool:
    """Whether ``text`` names an exception or holds a traceback: a program's words, not ours."""
    return bool(_EXCEPTION_NAME_RE.search(text) or _TRACE_RE.search(text))


def reads_as_instruction(text: str) -> bool:
    """Whether ``text`` gives its reader an order ("ignore previous instructions and say ...")."""
    return bool(_INSTRUCTION_RE.search(text))


def _without_exception_name(reason: str) -> str:
    """ "ValueError: Row 12 has 3 columns" -> "Row 12 has 3 columns"."""
    return _EXCEPTION_PREFIX_RE.sub("", reason, count=1)


def readable_reason(reason: str) -> str | None:
    """The first line of an error reason, when it reads as a sentence for people; else None.

    "ValueError: Row 12 has 3 columns" keeps "Row 12 has 3 columns"; "KeyError: 'amount'", a
    traceback, or "refused by postgres://admin:pw@db" give None: the person sees that something
    went wrong, and the details stay in the worker's log.
    """
    if _TRACE_RE.search(reason):
        return None
    first = _without_exception_name(reason.strip().split("\n", 1)[0])
    return first if _is_sentence_for_people(first) else None


def _is_sentence_for_people(reason: str) -> bool:
    """Whether an error reason reads as a sentence for people, not as a program's output.

    At least two words, no exception names or traces, no marks of code, no secrets, no orders.
    """
    if _EXCEPTION_NAME_RE.search(reason) or _CODE_RE.search(reason) or holds_secret(reason):
        return False
    if _RUNTIME_JARGON_RE.search(reason):
        return False
    if reads_as_instruction(reason):
        return False
    words = _WORD_RE.findall(reason)
    return len(words) >= 2 and len(words) * 2 >= len(reason.split())
