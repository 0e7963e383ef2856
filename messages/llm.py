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
from collections.abc import Collection, Mapping
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
from .fallback import WORKING, humanize_step
from .humanize import ACRONYMS
from .safety import reads_as_instruction
from .template import Template, parse_template

if TYPE_CHECKING:
    from groq import AsyncGroq
    from instructor import AsyncInstructor

__all__ = [
    "LLMConfig",
    "StepTemplate",
    "TemplateAuthor",
    "build_prompt",
    "check_template",
    "is_llm_step",
]

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
_WORDS_RE: Final = re.compile(r"[^\W\d_]+")
# What a status line of work in progress may not say, whatever the step: that something is
# finished, deleted or paid, an order or a question to the reader, anything about credentials.
_CLAIMS_RE: Final = re.compile(
    r"\b(?:done|complete[ds]?|completion|finish(?:ed|es)?|success\w*|succeed\w*|ready|all set"
    r"|sent|delivered|approved|confirmed|failed|error)\b",
    re.IGNORECASE,
)
_HARM_RE: Final = re.compile(
    r"\b(?:delet\w*|remov\w*|eras\w*|wip(?:e|ed|es|ing)|destroy\w*|purg\w*|lost|gone"
    r"|pay\w*|paid|charg\w*|refund\w*|transferr?\w*|wir(?:e|ed|es|ing)|dollars?|euros?|pounds?"
    r"|money|funds?|purchas\w*|bill(?:ed|ing)?)\b|[$\u20ac\u00a3\u00a5]",
    re.IGNORECASE,
)
_TO_THE_READER_RE: Final = re.compile(
    r"\b(?:you (?:must|should|need|have to|can|will need)|(?:can|could|would|will) you"
    r"|click|tap|type|enter|call|visit|reply|contact|log ?in|sign ?in|install"
    r"|password|passcode|passphrase|pin|credentials?|token|secret|api key|ssn|cvv)\b|[?!]",
    re.IGNORECASE,
)


_NOT_A_TOPIC: Final = frozenset(
    {"the", "and", "for", "with", "your", "from", "this", "that", "into"}
)


def _stems(text: str) -> set[str]:
    """The first four letters of each telling word: "validating" -> "vali", "IBANs" -> "iban"."""
    words = (word.lower() for word in _WORDS_RE.findall(text))
    return {word[:4] for word in words if len(word) >= 3 and word not in _NOT_A_TOPIC}


def check_template(step: str, source: str, keys: Collection[str]) -> Template:
    """The template, if a careful writer would let it describe ``step``; TemplateError if not.

    Form: one short plain sentence, no markup, links, emoji or newlines, placeholders among
    ``keys``. Meaning: work in progress ("Checking the IBANs in {filename}..."), about the
    step's own work (it shares a word with the step name), claiming nothing (finished, deleted,
    paid), asking nothing of the reader, not shouting. Every template passes here, fresh from
    the LLM or read back from Redis.
    """
    text = source.strip() if isinstance(source, str) else ""
    if not text:
        raise TemplateError("write one short sentence")
    if not text.isprintable():
        raise TemplateError("one line only: no newlines, tabs or control characters")
    prose = _PLACEHOLDERS_RE.sub("0", text)
    if _MARKUP_RE.search(prose):
        raise TemplateError("plain text only: no markup, links, code, underscores or symbols")
    if any(unicodedata.category(char) == "So" for char in prose):
        raise TemplateError("plain text only: no emoji or pictographs")
    if _SENTENCE_BREAK_RE.search(prose):
        raise TemplateError("exactly one sentence")
    if len(prose.split()) > _MAX_WORDS:
        raise TemplateError(f"at most {_MAX_WORDS} words")
    words = _WORDS_RE.findall(_PLACEHOLDERS_RE.sub(" ", text))
    if not words:
        raise TemplateError("write words, not only placeholders")
    template = parse_template(text, allowed_keys=keys, max_length=MAX_LLM_TEMPLATE_LENGTH)
    if not text.endswith("...") or not words[0].lower().endswith("ing") or len(words[0]) < 5:
        raise TemplateError("describe the work in progress: start with an -ing verb, end with ...")
    if _CLAIMS_RE.search(prose) or _HARM_RE.search(prose):
        raise TemplateError("claim nothing: not finished, failed, deleted, sent or paid")
    if _TO_THE_READER_RE.search(prose) or reads_as_instruction(prose):
        raise TemplateError("ask nothing of the reader, and never mention credentials")
    if any(
        word.isupper() and len(word) >= 3 and ACRONYMS.get(word.lower()) != word for word in words
    ):
        raise TemplateError("no shouting: capitals only for acronyms")
    if not _stems(" ".join(words)) & _stems(humanize_step(step) + " " + step.replace("_", " ")):
        raise TemplateError(f"describe the step {step!r} itself, using one of its words")
    return template


class StepTemplate(BaseModel):
    """The status line a person reads while one step of a background job runs."""

    model_config = ConfigDict(extra="ignore")

    template: str = Field(
        description=(
            "One short, friendly sentence in plain English that starts with a verb ending in "
            "-ing and ends with '...'. A context value may appear as its key name in braces, "
            "like {filename}; use only the keys you were given."
        ),
        max_length=MAX_LLM_TEMPLATE_LENGTH,
    )

    #: The step and the context keys of the request; set per request by ``template_model``.
    step: ClassVar[str] = ""
    allowed_keys: ClassVar[frozenset[str]] = frozenset()

    @field_validator("template")
    @classmethod
    def _checked(cls, value: str) -> str:
        check_template(cls.step, value, cls.allowed_keys)  # TemplateError is a ValueError
        return value.strip()


@functools.lru_cache(maxsize=256)
def template_model(step: str, keys: tuple[str, ...]) -> type[StepTemplate]:
    """A ``StepTemplate`` whose validator checks answers for ``step`` with ``keys``."""
    return type(
        "StepTemplate",
        (StepTemplate,),
        {"step": step, "allowed_keys": frozenset(keys), "__module__": __name__},
    )


_STEP_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[_.:-][A-Za-z0-9]+)*")
_ID_LIKE_RE: Final = re.compile(r"(?=[a-z]*\d)[a-z0-9]{6,}|\d{5,}|[a-f0-9]{8,}", re.IGNORECASE)


def is_llm_step(step: str) -> bool:
    """Whether ``step`` is a plain step name worth a template: no ids, hashes or odd characters,
    and read as work in progress.

    A step like ``resize_8f3a2c91`` changes with every job; asking about it would ask forever.
    A failure (``file_too_large``) or a result (``rows_imported``) already reads as one, and a
    template may only describe work in progress; a name that reads as an order is not sent.
    """
    if len(step) > MAX_LLM_STEP_LENGTH or not _STEP_RE.fullmatch(step):
        return False
    if any(
        _ID_LIKE_RE.fullmatch(word) and word.lower() not in ACRONYMS
        for word in re.split(r"[_.:-]", step)
    ):
        return False
    plain = humanize_step(step)
    return plain.endswith("...") and plain != WORKING


_SYSTEM_PROMPT: Final = (
    "You write the status line a person reads while a background job processes their file. "
    "Given a technical step name and the names of the context fields available, answer with a "
    "template: one short, friendly sentence in plain English, at most 12 words, in the voice "
    "of a helpful assistant, describing only the work this step is doing right now. Start "
    "with a verb ending in -ing, use one word of the step name, and end with '...'. Never say "
    "that anything is finished, sent, deleted or paid; never ask the reader to do anything. "
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
                    response_model=template_model(step, keys),
                    max_retries=self._config.max_retries,
                    temperature=0.2,
                    max_completion_tokens=120,
                )
            return check_template(step, answer.template, keys)
        except (InstructorError, groq.GroqError, ValueError, TimeoutError) as exc:
            # ValueError covers pydantic's ValidationError and TemplateError
            raise LLMError(_describe(exc)) from exc
        finally:
            _IN_OUR_CALL.reset(marker)

    async def aclose(self) -> None:
        await self._groq.close()
