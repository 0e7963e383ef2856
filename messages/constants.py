"""Names, limits and defaults of the messages package, in one place."""

from __future__ import annotations

from typing import Final

#: The Groq model that writes templates for unknown steps (``TIDINGS_LLM_MODEL``).
DEFAULT_LLM_MODEL: Final = "llama-3.1-8b-instant"
#: Seconds the Groq SDK waits for a reply; slower answers fall back quietly.
DEFAULT_LLM_TIMEOUT: Final = 1.5
#: Instructor's re-asks after an invalid answer (one initial request plus this many).
DEFAULT_LLM_MAX_RETRIES: Final = 1

#: Redis key of a shared template: ``tidings:msgtpl:v1:<step>:<sorted context keys, comma-joined>``.
#: The version part changes when the template language does, so old entries are not misread.
TEMPLATE_KEY_PREFIX: Final = "tidings:msgtpl:v1:"
#: How long Redis keeps a template nobody rewrote (30 days).
TEMPLATE_TTL_SECONDS: Final = 30 * 24 * 3600

#: Templates a writer keeps in memory (least recently used ones are dropped beyond this).
MEMORY_CACHE_SIZE: Final = 2048
#: Background lookups (Redis, then LLM) a writer runs or queues at once; more are not started.
MAX_PENDING_LOOKUPS: Final = 64
#: LLM requests in flight at once per writer.
MAX_CONCURRENT_LLM_CALLS: Final = 4
#: Seconds a writer waits before asking again about a step whose lookup failed or found nothing.
DEFAULT_RETRY_COOLDOWN: Final = 60.0

#: Longest step name the catalog holds (PROTOCOL.md allows 128 characters for ids; steps alike).
MAX_STEP_LENGTH: Final = 128
#: Context keys looked at when choosing placeholders; a context with more is read no further.
MAX_CONTEXT_KEYS: Final = 64
#: Longest step name the LLM is asked about; longer ones keep the humane fallback.
MAX_LLM_STEP_LENGTH: Final = 64
#: Most context keys offered to the LLM as placeholders.
MAX_TEMPLATE_KEYS: Final = 8
#: Longest context key usable as a placeholder.
MAX_KEY_LENGTH: Final = 40
#: Longest sentence the LLM may write (characters, placeholders included).
MAX_LLM_TEMPLATE_LENGTH: Final = 120
#: Longest template an application may register.
MAX_REGISTERED_TEMPLATE_LENGTH: Final = 300

#: A filename longer than this is shortened in the middle, keeping its extension.
MAX_FILENAME_LENGTH: Final = 40
#: Any other context text longer than this is shortened at its end.
MAX_TEXT_LENGTH: Final = 60
#: An error reason longer than this is shortened at its end.
MAX_REASON_LENGTH: Final = 160
#: An emitter's own message longer than this is shortened at its end.
MAX_MESSAGE_LENGTH: Final = 200
