"""Sentence templates: the small, safe language of registered and LLM-written sentences.

    {filename}            the value, shown for people (see ``context.render_value``)
    {rows:row}            a count with its noun: "no rows", "1 row", "1,204 rows"
    {people:person/people}  the same with an irregular plural
    {document_type:a}     the value with its article: "an invoice", "a bank statement"

Templates are parsed here, never handed to ``str.format``: a placeholder is a plain name, so a
template cannot reach attributes or items of a value, and stray braces are an error.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

from .context import Context, render_value
from .errors import TemplateError
from .humanize import count_phrase, to_count, with_article

__all__ = ["Placeholder", "Template", "parse_template"]

_PLACEHOLDER_RE: Final = re.compile(r"\{([^{}]*)\}")
_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")
_NOUN_RE: Final = re.compile(r"[A-Za-z][A-Za-z' -]{0,29}")


@dataclass(frozen=True, slots=True)
class Placeholder:
    """One ``{name}``, ``{name:noun}``, ``{name:singular/plural}`` or ``{name:a}``."""

    name: str
    singular: str | None = None
    plural: str | None = None
    article: bool = False

    def render(self, context: Context) -> str | None:
        value = context.get(self.name)
        if self.singular is not None:
            count = to_count(value)
            return None if count is None else count_phrase(count, self.singular, self.plural)
        text = render_value(self.name, value)
        if text is None:
            return None
        return with_article(text) if self.article else text


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template: literal text and placeholders, in order."""

    source: str
    parts: tuple[str | Placeholder, ...]

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(part.name for part in self.parts if isinstance(part, Placeholder))

    def render(self, context: Context) -> str | None:
        """The sentence, or None when a placeholder has no showable value in ``context``."""
        pieces: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                pieces.append(part)
                continue
            text = part.render(context)
            if text is None:
                return None
            pieces.append(text)
        sentence = "".join(pieces).strip()
        first = self.parts[0] if self.parts else ""
        if isinstance(first, Placeholder) and (first.singular is not None or first.article):
            sentence = sentence[:1].upper() + sentence[1:]  # "no rows ..." starts a sentence
        return sentence or None


def _parse_placeholder(body: str, source: str) -> Placeholder:
    name, colon, spec = body.partition(":")
    name = name.strip()
    if not _NAME_RE.fullmatch(name):
        raise TemplateError(f"bad placeholder {{{body}}} in template {source!r}")
    if not colon:
        return Placeholder(name)
    spec = spec.strip()
    if spec == "a":
        return Placeholder(name, article=True)
    singular, slash, plural = spec.partition("/")
    singular, plural = singular.strip(), plural.strip()
    if not _NOUN_RE.fullmatch(singular) or (slash and not _NOUN_RE.fullmatch(plural)):
        raise TemplateError(f"bad noun in placeholder {{{body}}} in template {source!r}")
    return Placeholder(name, singular=singular, plural=plural or None)


def parse_template(
    source: str, *, allowed_keys: Collection[str] | None = None, max_length: int = 300
) -> Template:
    """Parse ``source``; with ``allowed_keys``, every placeholder must name one of them.

    Raises TemplateError for stray braces, bad placeholders, control characters, a template
    longer than ``max_length`` or a placeholder outside ``allowed_keys``.
    """
    if not isinstance(source, str):
        raise TemplateError("a template is a string")
    source = source.strip()
    if not source:
        raise TemplateError("a template must not be empty")
    if len(source) > max_length:
        raise TemplateError(f"a template is at most {max_length} characters long")
    if not source.isprintable():
        raise TemplateError(f"template {source!r} holds control or invisible characters")
    parts: list[str | Placeholder] = []
    position = 0
    for match in _PLACEHOLDER_RE.finditer(source):
        parts.append(source[position : match.start()])
        parts.append(_parse_placeholder(match.group(1), source))
        position = match.end()
    parts.append(source[position:])
    for part in parts:
        if isinstance(part, str) and ("{" in part or "}" in part):
            raise TemplateError(f"stray brace in template {source!r}")
    template = Template(source, tuple(part for part in parts if part != ""))
    if allowed_keys is not None:
        unknown = template.keys - set(allowed_keys)
        if unknown:
            raise TemplateError(
                f"template {source!r} uses {', '.join(sorted(unknown))}, "
                f"allowed: {', '.join(sorted(allowed_keys)) or 'none'}"
            )
    return template
