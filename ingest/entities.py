"""E-mail addresses, links, dates and amounts: found in text, then resolved to distinct values.

The patterns are shared with column typing (``formats``), so a column typed ``email`` holds
exactly what extraction would find as addresses. Amounts need a currency sign or code: without
one, every number in a file would be an amount.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

__all__ = [
    "AMOUNT",
    "DATE",
    "DATETIME",
    "EMAIL",
    "ENTITY_KINDS",
    "URL",
    "EntityCollector",
    "normalise",
]

_MONTHS: Final = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    r"|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
_DAY: Final = r"(?:0?[1-9]|[12]\d|3[01])"
_MONTH: Final = r"(?:0?[1-9]|1[0-2])"
_DATE_TEXT: Final = (
    rf"\d{{4}}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"  # 2024-01-31
    rf"|\d{{4}}/{_MONTH}/{_DAY}"  # 2024/01/31
    rf"|{_DAY}[/.]{_DAY}[/.](?:\d{{4}}|\d{{2}})"  # 31/01/2024, 01/31/24, 31.01.2024
    rf"|(?:{_MONTHS})\.? {_DAY}(?:st|nd|rd|th)?,? \d{{4}}"  # Jan 31, 2024
    rf"|{_DAY}(?:st|nd|rd|th)? (?:{_MONTHS})\.?,? \d{{4}}"  # 31 January 2024
)
_TIME_TEXT: Final = (
    r"(?:[01]?\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d{1,9})?)?(?:\s?[ap]\.?m\.?)?"
    r"(?:\s?(?:Z|UTC|GMT|[+-](?:[01]\d|2[0-3]):?[0-5]\d))?"
)
_CURRENCY_SIGN: Final = "[$\u20ac\u00a3\u00a5\u20b9]"
_CURRENCY_CODE: Final = (
    "USD|EUR|GBP|JPY|CAD|AUD|CHF|CNY|INR|SEK|NOK|DKK|NZD|MXN|BRL|ZAR|SGD|HKD|PLN|CZK"
)
_NUMBER: Final = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"
_AMOUNT_TEXT: Final = (
    rf"\(?-?(?:{_CURRENCY_SIGN}|(?:{_CURRENCY_CODE})\s?)\s?-?(?:{_NUMBER})\)?"
    rf"|-?(?:{_NUMBER})\s?(?:{_CURRENCY_SIGN}|(?:{_CURRENCY_CODE})(?![A-Za-z]))"
)

EMAIL: Final = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)
URL: Final = re.compile(r"\bhttps?://[^\s<>\"'`{}|\\^\[\]]+", re.IGNORECASE)
DATE: Final = re.compile(rf"(?<![\d/.-])(?:{_DATE_TEXT})(?![\d/])", re.IGNORECASE)
DATETIME: Final = re.compile(rf"(?:{_DATE_TEXT})(?:[T ]|, | at ){_TIME_TEXT}", re.IGNORECASE)
AMOUNT: Final = re.compile(rf"(?<![\w.,])(?:{_AMOUNT_TEXT})(?![\d,])")

ENTITY_KINDS: Final = ("emails", "urls", "dates", "amounts")
_PATTERNS: Final = {"emails": EMAIL, "urls": URL, "dates": DATE, "amounts": AMOUNT}
#: Distinct values kept per kind; beyond it only the counts grow.
MAX_DISTINCT: Final = 10_000
#: Examples per kind in a job's result.
MAX_EXAMPLES: Final = 10
#: Longest piece of text searched at once; longer lines are searched in slices.
MAX_TEXT: Final = 1 << 16

_URL_TRAILING: Final = ".,;:!?'\""
_DATE_FORMATS: Final = ("%b %d %Y", "%B %d %Y", "%d %b %Y", "%d %B %Y")
_ORDINAL: Final = re.compile(r"(?<=\d)(?:st|nd|rd|th)\b", re.IGNORECASE)


def _trim_url(url: str) -> str:
    url = url.rstrip(_URL_TRAILING)
    while url.endswith(")") and url.count("(") < url.count(")"):
        url = url[:-1].rstrip(_URL_TRAILING)
    return url


def normalise(kind: str, value: str) -> str:
    """The form two mentions of one entity share: ``Alice@X.com`` and ``alice@x.com`` are one."""
    if kind == "emails":
        return value.lower()
    if kind == "urls":
        scheme, _, rest = value.partition("://")
        host, slash, path = rest.partition("/")
        return f"{scheme.lower()}://{host.lower()}{slash}{path}".rstrip("/")
    if kind == "dates":
        return _iso_date(value) or value
    if kind == "amounts":
        return " ".join(value.replace(" ", "").split())
    return value


def _iso_date(value: str) -> str | None:
    """ISO form of an unambiguous date (ISO or with a month name); None for 01/02/2024."""
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return value
    text = _ORDINAL.sub("", value).replace(",", " ").replace(".", " ")
    text = " ".join(text.split())
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern).date().isoformat()
        except ValueError:
            continue
    if "sept" in text.lower():
        return _iso_date(re.sub("(?i)sept", "Sep", text))
    return None


@dataclass
class EntityCollector:
    """Counts every mention and keeps the distinct values (up to MAX_DISTINCT per kind)."""

    found: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ENTITY_KINDS, 0))
    distinct: dict[str, dict[str, str]] = field(
        default_factory=lambda: {kind: {} for kind in ENTITY_KINDS}
    )

    def feed(self, text: str) -> None:
        for start in range(0, len(text), MAX_TEXT):
            self._search(text[start : start + MAX_TEXT])

    def feed_all(self, texts: Iterable[str]) -> EntityCollector:
        for text in texts:
            self.feed(text)
        return self

    def _search(self, text: str) -> None:
        for kind, pattern in _PATTERNS.items():
            if kind == "emails" and "@" not in text:
                continue
            if kind == "urls" and "://" not in text:
                continue
            for match in pattern.finditer(text):
                value = match.group()
                if kind == "urls":
                    value = _trim_url(value)
                self.found[kind] += 1
                seen = self.distinct[kind]
                if len(seen) < MAX_DISTINCT:
                    seen.setdefault(normalise(kind, value), value)

    @property
    def total_found(self) -> int:
        return sum(self.found.values())

    @property
    def total_distinct(self) -> int:
        return sum(len(values) for values in self.distinct.values())

    def summary(self) -> dict[str, Any]:
        """Per kind: mentions found, distinct entities, and the first few as they were written."""
        return {
            kind: {
                "found": self.found[kind],
                "distinct": len(self.distinct[kind]),
                "examples": list(self.distinct[kind].values())[:MAX_EXAMPLES],
            }
            for kind in ENTITY_KINDS
        }
