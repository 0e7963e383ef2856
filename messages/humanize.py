"""Numbers, sizes, durations and user text, written the way a person reads them.

Everything here is pure and total: a value it cannot use gives ``None`` (or a neutral word),
never an exception, because it runs on the path of every progress update.
"""

from __future__ import annotations

import math
import re
import unicodedata
from typing import Final

from .constants import MAX_FILENAME_LENGTH, MAX_TEXT_LENGTH
from .safety import (
    EMAIL_RE,
    URL_RE,
    holds_error_report,
    holds_secret,
    reads_as_instruction,
    strip_markdown,
)

__all__ = [
    "ACRONYMS",
    "article",
    "camel_words",
    "clean_filename",
    "clean_label",
    "clean_text",
    "count_phrase",
    "format_count",
    "format_duration",
    "format_number",
    "format_percent",
    "format_size",
    "plural",
    "to_count",
    "to_number",
    "to_ratio",
    "with_article",
]

ELLIPSIS: Final = "\u2026"

# fmt: off
#: Words shown in capitals (or in their own spelling) wherever they appear in a step or a label.
_SPELLINGS: Final = (
    "ACH", "AI", "AML", "API", "APIs", "AWS", "BAI2", "BIC", "CAMT", "CRM", "CSV", "CSVs", "DB",
    "EDI", "EFT", "EML", "ERP", "ETL", "FTP", "FX", "GL", "GPS", "GST", "HTML", "HTTP", "HTTPS",
    "IBAN", "IBANs", "ID", "IDs", "IMAP", "IP", "ISO", "JSON", "JWT", "KYC", "LLM", "MD5",
    "MIME", "MT940", "NACHA", "OK", "OCR", "OFX", "PDF", "PDFs", "PII", "QBO", "QIF", "QR", "S3",
    "SDK", "SEPA", "SFTP", "SHA", "SHA1", "SHA256", "SKU", "SKUs", "SMTP", "SQL", "SSN",
    "SWIFT", "TIN", "TSV", "UI", "URL", "URLs", "UTC", "UTF8", "UUID", "VAT", "VIN", "XLS",
    "XLSX", "XML", "YAML", "ZIP", "GitHub", "PayPal", "QuickBooks", "Stripe", "Xero", "Shopify",
    "Excel", "Google", "GCS", "BigQuery", "Snowflake", "Dropbox", "Slack", "Azure", "PNG",
    "JPEG", "GIF", "SMS", "Salesforce", "HubSpot"
)
# fmt: on
#: Lower-case word -> its own spelling ("iban" -> "IBAN", "paypal" -> "PayPal").
ACRONYMS: Final[dict[str, str]] = {word.lower(): word for word in _SPELLINGS}

# Characters that become a space, characters that disappear, and markup that is defanged.
# Control (Cc), format (Cf: bidi overrides and isolates, zero-width joiners, BOM), surrogate,
# private-use and unassigned code points never reach a sentence.
_DROPPED_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})
_SPACE_CATEGORIES: Final = frozenset({"Zs", "Zl", "Zp"})
_SPACE_CONTROLS: Final = frozenset("\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f\x85")
_DEFANGED: Final = str.maketrans({"<": "\u2039", ">": "\u203a", "{": "(", "}": ")"})
# Values that need none of the work below: short words of letters, digits and a little
# punctuation, one space apart. Most filenames and labels are like this, so it is checked first.
_PLAIN_TEXT_RE: Final = re.compile(r"[\w.,'()&+-]{1,23}(?: [\w.,'()&+-]{1,23})*")
_PLAIN_NAME_RE: Final = re.compile(r"[\w.,'()&+-]+(?: [\w.,'()&+-]+)*")
# A path separator, unless it sits inside a tag ("</script>"): a name is cut at its folders,
# never inside its own markup.
_PATH_SEPARATOR_RE: Final = re.compile(r"[/\\](?![^<>]*>)")


def _clean_char(char: str) -> str:
    if char in _SPACE_CONTROLS:
        return " "
    category = unicodedata.category(char)
    if category in _DROPPED_CATEGORIES:
        return ""
    if category in _SPACE_CATEGORIES:
        return " "
    return char


def _visible(value: str) -> str:
    """Strip invisible and control characters and collapse whitespace to single spaces."""
    if not value.isprintable() or "  " in value or value != value.strip():
        value = unicodedata.normalize("NFC", value)
        value = " ".join("".join(map(_clean_char, value)).split())
    return value


def _shorten_end(value: str, limit: int) -> str:
    if len(value) <= limit:
        return value
    cut = value[: limit - 1].rstrip()
    # End on a word boundary when one is near, so no word is cut in half.
    space = cut.rfind(" ")
    if space >= limit * 2 // 3:
        cut = cut[:space]
    return cut.rstrip(" ,;:-") + ELLIPSIS


def _shorten_middle(value: str, limit: int) -> str:
    if len(value) <= limit:
        return value
    dot = value.rfind(".")
    extension = value[dot:] if dot > 0 and len(value) - dot <= 8 else ""
    tail = max(limit // 3, len(extension))
    head = limit - tail - 1
    return value[:head].rstrip() + ELLIPSIS + value[-tail:].lstrip()


def clean_text(value: object, limit: int = MAX_TEXT_LENGTH) -> str | None:
    """User text made safe to show: one line, no control or bidi characters, no markup or links.

    A value holding a secret (a link, an e-mail address, a token, a password), an exception
    name or a traceback, or an order to the reader is withheld whole. Returns None for anything
    that is not a non-empty string once cleaned.
    """
    if not isinstance(value, str):
        return None
    # The common case, kept fast: a few plain words (an order to the reader needs more).
    if (
        len(value) <= limit
        and _PLAIN_TEXT_RE.fullmatch(value)
        and value.count(" ") < 3
        and "www." not in value
    ):
        return value
    text = strip_markdown(_visible(value[: limit * 4]))
    if not text or holds_secret(text) or holds_error_report(text) or reads_as_instruction(text):
        return None
    return _shorten_end(text.translate(_DEFANGED), limit)


def clean_filename(value: object, limit: int = MAX_FILENAME_LENGTH) -> str | None:
    """A filename as a person recognises it: its own name, without folders, markup or links.

    Markup is read before the name is cut at its folders, so ``<b>x</b>.csv`` stays whole and a
    link keeps only its text. A long name is shortened in the middle, keeping its extension.
    """
    if not isinstance(value, str):
        return None
    if len(value) <= limit and _PLAIN_NAME_RE.fullmatch(value):
        return value  # the common case, kept fast
    if len(value) > limit * 4:  # only the ends can be shown: clean no more than those
        value = value[: limit * 2] + ELLIPSIS + value[-limit * 2 :]
    text = strip_markdown(_visible(value), underscores=False)
    if URL_RE.fullmatch(text):  # a link's own name is the last part of its path, if any
        text = text.partition("://")[2] if "://" in text else text
        text = text.partition("/")[2].partition("?")[0]
    name = _PATH_SEPARATOR_RE.split(text.rstrip("/\\"))[-1].strip()
    if not name or EMAIL_RE.fullmatch(name):
        return None  # nothing left, or an e-mail address: a person's, not a file's name
    return _shorten_middle(name.translate(_DEFANGED), limit)


# A label is a name: up to six plain words (letters, digits, & . ' + / -), nothing else.
_LABEL_RE: Final = re.compile(r"[^\W_][\w&.'+/-]*(?: [\w&.'+/-]+){0,5}")
_CAMEL_RE: Final = re.compile(r"[a-z][A-Z]")
_NO_LABEL: Final = frozenset(
    {"unknown", "other", "none", "n/a", "na", "null", "undefined", "unclassified", "misc", "-"}
)
_SMALL_WORDS: Final = frozenset({"of", "and", "the", "for", "de", "du", "la", "van", "von"})


def clean_label(value: object, *, name: bool = False) -> str | None:
    """A kind or a source in words: "bank_statement" -> "bank statement".

    Identifiers (snake or camel case) are read aloud; with ``name`` they are a proper name
    ("bank_of_america" -> "Bank of America"). A label is a name, so anything else (markup, a
    link, a sentence, an error message) gives None, as do words that say "nothing known".
    """
    if not isinstance(value, str) or len(value) > MAX_TEXT_LENGTH * 2:
        return None
    plain = _visible(value)
    if not _LABEL_RE.fullmatch(plain):
        return None
    text = clean_text(plain.replace("_", " "))
    if text is None or text.lower() in _NO_LABEL:
        return None
    if text.lower() in ACRONYMS:
        return ACRONYMS[text.lower()]
    identifier = bool(_CAMEL_RE.search(text)) or "_" in value
    if identifier or (name and text.islower()):
        words = [word.lower() for chunk in text.split() for word in camel_words(chunk)]
        if name:
            words = [word if word in _SMALL_WORDS else word.capitalize() for word in words]
        text = " ".join(ACRONYMS.get(word.lower(), word) for word in words)
    return text


def camel_words(chunk: str) -> list[str]:
    """ "validateIBANChecksums" -> ["validate", "IBAN", "Checksums"]; letters of any script."""
    parts: list[str] = []
    start = 0
    for index in range(1, len(chunk)):
        before, char = chunk[index - 1], chunk[index]
        after = chunk[index + 1 : index + 2]
        if (
            (before.islower() and char.isupper())
            or (before.isupper() and char.isupper() and after.islower())
            or (before.isalpha() and char.isdigit())
        ):
            parts.append(chunk[start:index])
            start = index
    parts.append(chunk[start:])
    return parts


# --- numbers -------------------------------------------------------------------------------


def to_number(value: object) -> float | int | None:
    """A finite number from an int, a float or a numeric string ("1,204", " 42 "); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str) and len(value) <= 32:
        text = value.strip().replace(",", "").replace("_", "")
        try:
            return int(text)
        except ValueError:
            pass
        try:
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def to_count(value: object) -> int | None:
    """A whole number of things (zero or more); fractions, negatives and non-numbers give None."""
    number = to_number(value)
    if number is None or number < 0 or number > 10**15:
        return None
    if isinstance(number, float):
        if not number.is_integer():
            return None
        return int(number)
    return number


def to_ratio(value: object) -> float | None:
    """A share between 0 and 1; a number between 1 and 100, or text ending in "%", is a percentage.

    Exactly 1 reads as the whole (1.0): a similarity of "1%" is written so.
    """
    if isinstance(value, str) and value.strip().endswith("%"):
        percent = to_number(value.strip()[:-1])
        return None if percent is None or not 0 <= percent <= 100 else percent / 100
    number = to_number(value)
    if number is None or number < 0:
        return None
    if number <= 1:
        return float(number)
    if number <= 100:
        return number / 100
    return None


def format_count(count: int) -> str:
    """1204 -> "1,204"."""
    return f"{count:,}"


def format_number(number: float | int) -> str:
    """A count with thousands separators, or a measure with at most one decimal."""
    if isinstance(number, int) or number.is_integer():
        return f"{int(number):,}"
    text = f"{number:,.1f}"
    return text[:-2] if text.endswith(".0") else text


def format_percent(ratio: float) -> str:
    """0.87 -> "87%"; never rounds a partial share up to 100% or down to 0%."""
    percent = ratio * 100
    rounded = round(percent)
    if rounded >= 100 and percent < 100:
        return "99%"
    if rounded <= 0 < percent:
        return "less than 1%"
    return f"{rounded}%"


_SIZE_UNITS: Final = ("KB", "MB", "GB", "TB", "PB")


def format_size(size: int, *, at_most: bool = False) -> str:
    """Bytes in decimal units, as file browsers show them: 3200000 -> "3.2 MB".

    ``at_most`` rounds down, for a part of a whole: 9,960,000 bytes of 10 MB read "9.9 MB",
    never "10 MB", which would claim the whole.
    """
    if size < 1000:
        return "1 byte" if size == 1 else f"{size} bytes"
    scale = 1
    for unit in _SIZE_UNITS:
        scale *= 1000
        tenths = size * 10 // scale if at_most else round(size * 10 / scale)
        if tenths < 100:
            whole, tenth = divmod(tenths, 10)
            return f"{whole}.{tenth} {unit}" if tenth else f"{whole} {unit}"
        whole = size // scale if at_most else round(size / scale)
        if whole < 1000 or unit == _SIZE_UNITS[-1]:
            return f"{whole:,} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def format_duration(seconds: float) -> str:
    """A rough duration: "a few seconds", "about 40 seconds", "about 2 minutes", "about an hour"."""
    if seconds < 10:
        return "a few seconds"
    if seconds < 55:
        return f"about {round(seconds / 5) * 5} seconds"
    minutes = seconds / 60
    if minutes < 1.5:
        return "about a minute"
    if minutes < 55:
        return f"about {round(minutes)} minutes"
    hours = minutes / 60
    if hours < 1.5:
        return "about an hour"
    if hours < 23.5:
        return f"about {round(hours)} hours"
    days = hours / 24
    if days < 1.5:
        return "about a day"
    return f"about {format_count(round(days))} days"


# --- words ---------------------------------------------------------------------------------

_IRREGULAR_PLURALS: Final = {
    "person": "people",
    "child": "children",
    "analysis": "analyses",
    "datum": "data",
    "index": "indexes",
    "matrix": "matrices",
}


def plural(noun: str) -> str:
    """The regular English plural of a noun: row -> rows, entry -> entries, match -> matches."""
    lower = noun.lower()
    if lower in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[lower]
    if lower.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    if lower.endswith("y") and len(noun) > 1 and lower[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def count_phrase(count: int, singular: str, plural_form: str | None = None) -> str:
    """1 -> "1 row", 0 -> "no rows", 1204 -> "1,204 rows"."""
    many = plural_form if plural_form is not None else plural(singular)
    if count == 0:
        return f"no {many}"
    if count == 1:
        return f"1 {singular}"
    return f"{format_count(count)} {many}"


# Words whose spelling misleads the a/an rule: sounded with a vowel, or with a consonant.
_AN_WORDS: Final = ("hour", "honest", "honor", "honour", "heir", "herb")
_A_WORDS: Final = (
    "uni", "use", "usu", "uti", "ure", "uro", "eu", "ewe", "one", "once", "ubiq", "uganda",
    "ukrain", "unanim",
)  # fmt: skip
_LEADING_DIGITS: Final = re.compile(r"\d+")
_AN_LETTERS: Final = frozenset("AEFHILMNORSX")  # letters whose name starts with a vowel sound


def article(phrase: str) -> str:
    """The indefinite article for a phrase: "an invoice", "a bank statement", "an SQL dump"."""
    word = phrase.split(" ", 1)[0].strip("\"'(\u2039")
    if not word:
        return "a"
    if word[0].isdigit():
        digits = _LEADING_DIGITS.match(word.replace(",", ""))
        number = digits.group() if digits else ""
        # eight, eighty, eleven, eighteen (and their thousands) start with a vowel sound
        return (
            "an"
            if number.startswith("8") or (len(number) % 3 == 2 and number[:2] in ("11", "18"))
            else "a"
        )
    letters = word.rstrip("s") if len(word) > 2 else word
    if letters.isupper() and len(letters) <= 5 and letters.isalpha():
        return "an" if word[0] in _AN_LETTERS else "a"
    lower = word.lower()
    if lower.startswith(_AN_WORDS):
        return "an"
    if lower.startswith(_A_WORDS):
        return "a"
    return "an" if lower[0] in "aeiou" else "a"


def is_plural(phrase: str) -> bool:
    """ "invoices", "bank statements", "CSVs" are plural; "analysis", "status", "SMS" are not."""
    last = phrase.rsplit(" ", 1)[-1]
    lower = last.lower()
    if len(last) < 3 or not lower.endswith("s") or last.isupper():
        return False
    return not lower.endswith(("ss", "us", "is"))


def with_article(phrase: str) -> str:
    """ "invoice" -> "an invoice"; a plural takes none: "invoices"."""
    return phrase if is_plural(phrase) else f"{article(phrase)} {phrase}"
