"""The server's reading of the LLM settings: an empty key is no key (messages/README.md)."""

from __future__ import annotations

import pytest

from server.settings import Settings


@pytest.mark.parametrize("blank", ["", "   "])
def test_an_empty_groq_api_key_leaves_the_llm_off(
    monkeypatch: pytest.MonkeyPatch, blank: str
) -> None:
    monkeypatch.setenv("GROQ_API_KEY", blank)
    assert Settings().groq_api_key is None


def test_a_groq_api_key_turns_the_llm_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Control arm: the same variable with a value is read."""
    monkeypatch.setenv("GROQ_API_KEY", "gsk-test")
    key = Settings().groq_api_key
    assert key is not None and key.get_secret_value() == "gsk-test"
