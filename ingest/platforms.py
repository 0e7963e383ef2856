"""Recognisable exports, told apart by their column names, and what kind of document a file is.

Each platform is a signature: column names (compared lowercased, whitespace collapsed) that
its export always has. A file matches when it has every one of them; the longest matching
signature wins, so a specific export beats a generic one. ``docs/ingestion.md`` lists them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from tidings.ingest.formats import Analysis

__all__ = ["PLATFORMS", "Platform", "classify", "detect_platform", "normalise_column"]


@dataclass(frozen=True, slots=True)
class Platform:
    name: str
    #: What the export is, as the document classification names it.
    document: str
    columns: frozenset[str]


def _platform(name: str, document: str, *columns: str) -> Platform:
    return Platform(name, document, frozenset(columns))


PLATFORMS: Final = (
    _platform("Stripe", "payment report", "id", "created (utc)", "amount", "currency", "status"),
    _platform(
        "Stripe",
        "payout report",
        "id",
        "type",
        "source",
        "amount",
        "fee",
        "net",
        "currency",
        "created (utc)",
        "available on (utc)",
    ),
    _platform("Stripe", "payment report", "object", "id", "amount", "currency", "livemode"),
    _platform(
        "PayPal",
        "payment report",
        "date",
        "time",
        "name",
        "type",
        "status",
        "currency",
        "gross",
        "fee",
        "net",
        "transaction id",
    ),
    _platform(
        "Shopify",
        "order export",
        "name",
        "email",
        "financial status",
        "fulfillment status",
        "lineitem quantity",
        "lineitem name",
        "lineitem price",
    ),
    _platform(
        "Square",
        "sales report",
        "date",
        "time",
        "gross sales",
        "net sales",
        "total collected",
        "transaction id",
    ),
    _platform(
        "Chase", "bank statement", "details", "posting date", "description", "amount", "balance"
    ),
    _platform(
        "Chase",
        "card statement",
        "transaction date",
        "post date",
        "description",
        "category",
        "type",
        "amount",
    ),
    _platform("Bank of America", "bank statement", "date", "description", "amount", "running bal."),
    _platform(
        "American Express",
        "card statement",
        "date",
        "description",
        "card member",
        "account #",
        "amount",
    ),
    _platform(
        "Capital One",
        "card statement",
        "transaction date",
        "posted date",
        "card no.",
        "description",
        "debit",
        "credit",
    ),
    _platform(
        "Monzo",
        "bank statement",
        "transaction id",
        "date",
        "time",
        "type",
        "name",
        "emoji",
        "category",
        "amount",
        "currency",
    ),
    _platform(
        "Revolut",
        "bank statement",
        "type",
        "product",
        "started date",
        "completed date",
        "description",
        "amount",
        "fee",
        "currency",
        "state",
        "balance",
    ),
    _platform(
        "Wise",
        "bank statement",
        "transferwise id",
        "date",
        "amount",
        "currency",
        "description",
        "running balance",
    ),
)


def normalise_column(name: str) -> str:
    return " ".join(name.lower().split())


def detect_platform(columns: Iterable[str]) -> Platform | None:
    """The platform whose signature the columns hold (the most specific one), or None."""
    present = {normalise_column(name) for name in columns}
    matches = [platform for platform in PLATFORMS if platform.columns <= present]
    return max(matches, key=lambda platform: len(platform.columns), default=None)


_AMOUNT_WORDS: Final = ("amount", "total", "price", "debit", "credit", "gross", "net", "balance")
_DOCUMENT_WORDS: Final = ("invoice", "receipt", "statement", "order")


def classify(analysis: Analysis, platform: Platform | None) -> str:
    """What a person would call the document: "bank statement", "contact list", "e-mail"..."""
    if platform is not None:
        return platform.document
    if analysis.kind == "email":
        subject = (analysis.details.get("subject") or "").lower()
        word = next((word for word in _DOCUMENT_WORDS if word in subject), None)
        if word is not None:
            return f"{word} e-mail"
        return "e-mail with attachments" if analysis.details.get("attachment_count") else "e-mail"
    if analysis.kind == "text":
        return "text document"
    types = {item.type for item in analysis.fields}
    names = [normalise_column(item.name) for item in analysis.fields]
    has_dates = bool(types & {"date", "datetime"})
    has_amounts = "money" in types or any(word in name for name in names for word in _AMOUNT_WORDS)
    if has_dates and has_amounts:
        return "transaction list"
    if "email" in types:
        return "contact list"
    if analysis.kind == "csv":
        return "spreadsheet"
    single_object = analysis.details.get("records_path") is None and analysis.details.get(
        "shape"
    ) in ("object", "value")
    return "JSON document" if single_object else "data set"
