"""The LLM fallback: Groq writes a sentence template for a step the catalog does not know.

Only the step name and the context's *keys* are sent, never a value, so no user data (a filename,
an amount) reaches the LLM and one answer serves every later file with the same keys. The answer
is a template (``"Validating the IBANs in {filename}..."``) checked twice: by the pydantic model
instructor validates against (so an invalid answer is re-asked once), and by ``parse_template``
against the keys that were offered.

groq and instructor are imported when a ``TemplateAuthor`` is first built, so that a process
that only needs ``generate_friendly_status`` does not pay for them.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .constants import (
    DEFAULT_LLM_MAX_RETRIES,
    DEFAULT_LLM_MODEL,
    DEFAULT_LLM_TIMEOUT,
    MAX_LLM_STEP_LENGTH,
    MAX_LLM_TEMPLATE_LENGTH,
)
from .errors import LLMError, TemplateError
from .humanize import ACRONYMS
from .template import Template, parse_template

if TYPE_CHECKING:
    from groq import AsyncGroq
    from instructor import AsyncInstructor

__all__ = ["LLMConfig", "StepTemplate", "TemplateAuthor", "build_prompt", "is_llm_step"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LLMConfig:
    """How to reach Groq. The defaults are the measured ones: a slow answer is not worth waiting
    for (the sentence only improves the *next* event), so the SDK does not retry, and instructor
    re-asks once when the answer breaks the rules."""

    api_key: str = field(repr=False)
    base_url: str | None = None
    model: str = DEFAULT_LLM_MODEL
    timeout: float = DEFAULT_LLM_TIMEOUT
    max_retries: int = DEFAULT_LLM_MAX_RETRIES

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> LLMConfig | None:
        """``GROQ_API_KEY``, ``GROQ_BASE_URL``, ``TIDINGS_LLM_MODEL``; None when there is no key.

        Takes the mapping from the caller (the entry point's settings), never reads the process
        environment itself.
        """
        api_key = environ.get("GROQ_API_KEY", "").strip()
        if not api_key:
            return None
        return cls(
            api_key=api_key,
            base_url=environ.get("GROQ_BASE_URL", "").strip() or None,
            model=environ.get("TIDINGS_LLM_MODEL", "").strip() or DEFAULT_LLM_MODEL,
        )


# --- what the LLM must answer ---------------------------------------------------------------------

_PLACEHOLDERS_RE: Final = re.compile(r"\{[^{}]*\}")
_MARKUP_RE: Final = re.compile(r"[<>*_`#\[\]|\\~^$@]|://|www\.", re.IGNORECASE)
_SENTENCE_BREAK_RE: Final = re.compile(r"[.!?;]+\s+\S")
_MAX_WORDS: Final = 16


class StepTemplate(BaseModel):
    """The status line a person reads while one step of a background job runs."""

    model_config = ConfigDict(extra="ignore")

    template: str = Field(
        description=(
            "One short, friendly sentence in plain English. A context value may appear as its "
            "key name in braces, like {filename}; use only the keys you were given."
        ),
        max_length=MAX_LLM_TEMPLATE_LENGTH,
    )

    #: The context keys the template may use; set per request by ``template_model``.
    allowed_keys: ClassVar[frozenset[str]] = frozenset()

    @field_validator("template")
    @classmethod
    def _one_short_plain_sentence(cls, value: str) -> str:
        text = value.strip()
        if not text:
            raise ValueError("write one short sentence")
        if not text.isprintable():
            raise ValueError("one line only: no newlines, tabs or control characters")
        prose = _PLACEHOLDERS_RE.sub("0", text)
        if _MARKUP_RE.search(prose):
            raise ValueError("plain text only: no markup, links, code, underscores or symbols")
        if any(unicodedata.category(char) == "So" for char in prose):
            raise ValueError("plain text only: no emoji or pictographs")
        if _SENTENCE_BREAK_RE.search(prose):
            raise ValueError("exactly one sentence")
        if len(prose.split()) > _MAX_WORDS:
            raise ValueError(f"at most {_MAX_WORDS} words")
        if not any(char.isalpha() for char in prose):
            raise ValueError("write words, not only placeholders")
        try:
            parse_template(text, allowed_keys=cls.allowed_keys, max_length=MAX_LLM_TEMPLATE_LENGTH)
        except TemplateError as exc:
            raise ValueError(str(exc)) from None
        return text


@functools.lru_cache(maxsize=256)
def template_model(keys: tuple[str, ...]) -> type[StepTemplate]:
    """A ``StepTemplate`` whose validator accepts exactly the placeholders in ``keys``."""
    return type(
        "StepTemplate", (StepTemplate,), {"allowed_keys": frozenset(keys), "__module__": __name__}
    )


_STEP_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[_.:-][A-Za-z0-9]+)*")
_ID_LIKE_RE: Final = re.compile(r"(?=[a-z]*\d)[a-z0-9]{6,}|\d{5,}|[a-f0-9]{8,}", re.IGNORECASE)


def is_llm_step(step: str) -> bool:
    """Whether ``step`` is a plain step name worth a template: no ids, hashes or odd characters.

    A step like ``resize_8f3a2c91`` changes with every job; asking about it would ask forever.
    """
    if len(step) > MAX_LLM_STEP_LENGTH or not _STEP_RE.fullmatch(step):
        return False
    return not any(
        _ID_LIKE_RE.fullmatch(word) and word.lower() not in ACRONYMS
        for word in re.split(r"[_.:-]", step)
    )


_SYSTEM_PROMPT: Final = (
    "You write the status line a person reads while a background job processes their file. "
    "Given a technical step name and the names of the context fields available, answer with a "
    "template: one short, friendly sentence in plain English, at most 12 words, in the voice "
    "of a helpful assistant. If the step is still running, use the present tense and end with "
    "'...'; if it reports a finished result, state it without '...'. "
    "You may show a field's value by writing the field's name in braces, like {filename}; use "
    "only the listed names, each at most once, or none. For a count, write {name:noun} to get "
    "the number with the noun in the right singular or plural, like {rows:row}. "
    "No markup, no emoji, no quotes, no underscores, no technical jargon, and never the raw "
    "step name."
)


def build_prompt(step: str, keys: tuple[str, ...]) -> list[dict[str, str]]:
    """The chat messages for one request: the step name and the key names, nothing else."""
    fields = ", ".join(keys) if keys else "none"
    return [
        {"role": "system", "content": _SYSTEM_PROMPT},
        {"role": "user", "content": f"Step name: {step}\nContext fields: {fields}"},
    ]


# --- logging ------------------------------------------------------------------------------------

# instructor logs every failed attempt at ERROR level before raising; inside our own calls the
# writer's single warning says it all, so those records are dropped there and only there.
_IN_OUR_CALL: Final = contextvars.ContextVar("tidings_messages_llm_call", default=False)
_INSTRUCTOR_LOGGERS: Final = ("instructor.v2.retry", "instructor.v2", "instructor")


class _QuietInOurCalls(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _IN_OUR_CALL.get()


_QUIET_FILTER: Final = _QuietInOurCalls()


def _quiet_instructor_logs() -> None:
    for name in _INSTRUCTOR_LOGGERS:
        instructor_logger = logging.getLogger(name)
        if _QUIET_FILTER not in instructor_logger.filters:
            instructor_logger.addFilter(_QUIET_FILTER)


def _describe(exc: BaseException) -> str:
    """A few words on why a request failed, for the log line: never a traceback."""
    import groq

    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            break
        if isinstance(seen, groq.APIStatusError):
            return f"HTTP {seen.status_code}"
        if isinstance(seen, groq.APITimeoutError | TimeoutError):
            return "timed out"
        if isinstance(seen, groq.APIConnectionError):
            return "could not connect"
        if isinstance(seen, ValidationError | TemplateError):
            return "the answer broke the template rules"
        seen = seen.__cause__ or seen.__context__
    return type(exc).__name__


# --- the client ----------------------------------------------------------------------------------


class TemplateAuthor:
    """Asks Groq, through instructor, for one validated template at a time."""

    def __init__(self, config: LLMConfig) -> None:
        import groq
        import instructor

        _quiet_instructor_logs()
        self._config = config
        self._groq: AsyncGroq = groq.AsyncGroq(
            api_key=config.api_key,
            base_url=config.base_url,
            timeout=config.timeout,
            max_retries=0,
        )
        self._client: AsyncInstructor = instructor.from_groq(self._groq, mode=instructor.Mode.TOOLS)
        # A safety net over the SDK's per-phase timeouts: a reply that trickles in slowly still
        # ends, after every attempt has had its time.
        self._deadline = config.timeout * (config.max_retries + 1) + 0.5

    @property
    def config(self) -> LLMConfig:
        return self._config

    async def write(self, step: str, keys: tuple[str, ...]) -> Template:
        """A template for ``step`` using only ``keys``; LLMError when none could be had."""
        import groq
        from instructor.core import InstructorError

        marker = _IN_OUR_CALL.set(True)
        try:
            async with asyncio.timeout(self._deadline):
                answer = await self._client.chat.completions.create(
                    model=self._config.model,
                    messages=build_prompt(step, keys),  # type: ignore[arg-type]
                    response_model=template_model(keys),
                    max_retries=self._config.max_retries,
                    temperature=0.2,
                    max_completion_tokens=120,
                )
            return parse_template(
                answer.template, allowed_keys=keys, max_length=MAX_LLM_TEMPLATE_LENGTH
            )
        except (InstructorError, groq.GroqError, ValueError, TimeoutError) as exc:
            # ValueError covers pydantic's ValidationError and TemplateError
            raise LLMError(_describe(exc)) from exc
        finally:
            _IN_OUR_CALL.reset(marker)

    async def aclose(self) -> None:
        await self._groq.close()
