"""Forgiving, typed reads of a worker's context, and how one value is shown in a sentence.

A context is user data: any key may be missing, any value may have the wrong type. A read that
cannot use the value answers None, so a sentence simply leaves that detail out.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Final

from .constants import MAX_CONTEXT_KEYS, MAX_KEY_LENGTH, MAX_TEMPLATE_KEYS, MAX_TEXT_LENGTH
from .humanize import (
    clean_filename,
    clean_text,
    format_duration,
    format_number,
    format_percent,
    format_size,
    to_count,
    to_number,
    to_ratio,
)
from .safety import EMAIL_RE

__all__ = ["FILENAME_KEYS", "Context", "render_value", "template_keys"]

FILENAME_KEYS: Final = ("filename", "file_name")
_EMPTY: Final[Mapping[str, object]] = {}
_PLAIN: Final = frozenset({str, int, bool, type(None)})
_MAX_SECONDS: Final = 10 * 365 * 86400  # beyond ten years a duration is a mistake

_KEY_RE: Final = re.compile(rf"[A-Za-z_][A-Za-z0-9_]{{0,{MAX_KEY_LENGTH - 1}}}")
# Keys whose values are identifiers or secrets: never shown, never offered as placeholders.
_HIDDEN_KEY_RE: Final = re.compile(
    r"(?:^|_)(?:id|ids|uuid|guid|hash|sha\d*|md5|digest|token|secret|password|key|etag)$",
    re.IGNORECASE,
)
_FILENAME_KEY_RE: Final = re.compile(r"(?:^|_)(?:filename|file_name|path)$", re.IGNORECASE)
_SIZE_KEY_RE: Final = re.compile(r"(?:^|_)(?:bytes|size)$", re.IGNORECASE)
_SECONDS_KEY_RE: Final = re.compile(r"(?:^|_)(?:seconds|secs|eta|duration)$", re.IGNORECASE)
# Keys whose value is an e-mail address on purpose ("send the report to {email}"): there the
# address is the point, while in any other text it is withheld as personal data.
_EMAIL_KEY_RE: Final = re.compile(r"(?:^|_)(?:e_?mail|recipient)s?$", re.IGNORECASE)
_SHARE_KEY_RE: Final = re.compile(
    r"(?:^|_)(?:percent|pct|score|similarity|ratio|confidence|share)$", re.IGNORECASE
)


class Context:
    """Typed reads of a context mapping; a missing or unusable value reads as None."""

    __slots__ = ("_data",)

    def __init__(self, data: object = None) -> None:
        # A dict, as it mostly is, without the Mapping ABC's isinstance check (slow, per event).
        mapping = type(data) is dict or isinstance(data, Mapping)
        self._data: Mapping[str, object] = data if mapping else _EMPTY  # type: ignore[assignment]

    def __bool__(self) -> bool:
        return bool(self._data)

    def get(self, key: str) -> object:
        try:
            return self._data.get(key)
        except Exception:  # a hostile Mapping; the context is only ever a hint
            return None

    def count(self, *keys: str) -> int | None:
        """The first of ``keys`` that holds a whole number of things (0 or more)."""
        for key in keys:
            count = to_count(self.get(key))
            if count is not None:
                return count
        return None

    def ratio(self, *keys: str) -> float | None:
        """The first of ``keys`` that holds a share (0..1, or a percentage 1..100)."""
        for key in keys:
            ratio = to_ratio(self.get(key))
            if ratio is not None:
                return ratio
        return None

    def seconds(self, *keys: str) -> float | None:
        """The first of ``keys`` that holds a non-negative number of seconds."""
        for key in keys:
            number = to_number(self.get(key))
            if number is not None and 0 <= number <= _MAX_SECONDS:
                return float(number)
        return None

    def filename(self, *keys: str) -> str | None:
        """The file's name as a person recognises it (last path part, shortened in the middle)."""
        for key in keys or FILENAME_KEYS:
            name = clean_filename(self.get(key))
            if name is not None:
                return name
        return None

    def key(self) -> object:
        """The context as a dict key, or None: when its values are all text, whole numbers,
        flags or None, contexts with equal keys read alike. The types are part of it (True and
        1 are equal, yet one is a flag and the other a count); other values have none (0.0 and
        -0.0 are equal, a list is no key, a hostile Mapping may raise)."""
        try:
            items = tuple(self._data.items())
            types = tuple(map(type, self._data.values()))
        except Exception:
            return None
        return (items, types) if _PLAIN.issuperset(types) else None

    def keys(self) -> list[str]:
        """The context's string keys, at most MAX_CONTEXT_KEYS of them."""
        try:
            keys = itertools.islice(self._data, MAX_CONTEXT_KEYS)
            return [key for key in keys if isinstance(key, str)]
        except Exception:
            return []


def render_value(key: str, value: object) -> str | None:
    """One context value as it reads in a sentence, by what its key says it holds.

    ``*_bytes``/``size`` are sizes, ``*_seconds``/``eta`` durations, ``*_score``/``*_percent``
    shares, ``filename``/``*_path`` file names, ``*_email`` an address; other numbers get
    thousands separators and other text is cleaned (links and secrets withheld). Identifiers
    (``*_id``, ``*_hash``, ``*_token``, ...) are never shown.
    """
    if isinstance(value, bool) or _HIDDEN_KEY_RE.search(key):
        return None
    if _FILENAME_KEY_RE.search(key):
        return clean_filename(value)
    if _EMAIL_KEY_RE.search(key) and isinstance(value, str):
        address = value.strip()
        if len(address) <= MAX_TEXT_LENGTH and EMAIL_RE.fullmatch(address):
            return address
    number = to_number(value)
    if number is not None:
        if _SIZE_KEY_RE.search(key):
            size = to_count(number)
            return None if size is None else format_size(size)
        if _SECONDS_KEY_RE.search(key):
            return format_duration(number) if 0 <= number <= _MAX_SECONDS else None
        if _SHARE_KEY_RE.search(key):
            ratio = to_ratio(number)
            return None if ratio is None else format_percent(ratio)
        if not isinstance(value, str):
            if "year" in key.lower() and isinstance(number, int):
                return str(number)
            return format_number(number)
    return clean_text(value)


def template_keys(context: Context) -> tuple[str, ...]:
    """The context keys a template may use as placeholders: named plainly, with a showable value.

    Sorted, so that one template serves every later context with the same keys.
    """
    usable = sorted(
        key
        for key in context.keys()  # noqa: SIM118 - Context is not a Mapping
        if _KEY_RE.fullmatch(key) and render_value(key, context.get(key)) is not None
    )
    return tuple(usable[:MAX_TEMPLATE_KEYS])
