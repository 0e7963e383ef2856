"""The exceptions of the messages package.

Only ``register_step`` raises to its caller; the LLM errors stay inside the writer, which turns
them into one log line and the humane fallback sentence.

    MessagesError
     ├── TemplateError   a template is malformed, or names a placeholder it may not use
     └── LLMError        the LLM gave no usable template (HTTP error, timeout, invalid output)
"""

from __future__ import annotations

__all__ = ["LLMError", "MessagesError", "TemplateError"]


class MessagesError(Exception):
    """Base class of every error the messages package raises."""


class TemplateError(MessagesError, ValueError):
    """A sentence template is malformed or names a placeholder it may not use."""


class LLMError(MessagesError):
    """The LLM could not write a usable template; the caller keeps the humane fallback."""
