"""Friendly status sentences: a worker's technical step and context become what a person reads.

    >>> generate_friendly_status("duplicate_check", {"filename": "expenses.csv"})
    "Checking if I've seen expenses.csv before..."

``generate_friendly_status`` is the pure, instant path (catalog, then a humane reading of the
step name). ``MessageWriter`` adds what a server needs: an emitter's own message, and templates
for unknown steps learned from an LLM in the background and shared through Redis.
This package imports nothing from ``server`` and needs no network.
"""

from .catalog import BUILTIN_STEPS, generate_friendly_status, register_step
from .errors import LLMError, MessagesError, TemplateError
from .fallback import humanize_step
from .llm import LLMConfig
from .writer import MessageWriter

__all__ = [
    "BUILTIN_STEPS",
    "LLMConfig",
    "LLMError",
    "MessageWriter",
    "MessagesError",
    "TemplateError",
    "generate_friendly_status",
    "humanize_step",
    "register_step",
]
