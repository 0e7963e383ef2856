"""Issue 12's table: each input and the sentence a careful writer would sign (``cases.py``)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from messages import generate_friendly_status, humanize_step
from messages.context import Context, template_keys
from messages.errors import TemplateError
from messages.llm import check_template
from tests.messages.cases import (
    CATALOG_SPELLINGS,
    LLM_CONTEXT,
    LLM_TEMPLATES,
    SAFETY,
    TRUTH,
    UNKNOWN_STEPS,
)


def test_the_table_holds_at_least_500_pairs() -> None:
    pairs = [*SAFETY, *TRUTH, *UNKNOWN_STEPS, *CATALOG_SPELLINGS, *LLM_TEMPLATES]
    assert len(pairs) >= 500
    inputs = [repr(pair[:-1]) for pair in pairs]
    assert len(set(inputs)) == len(inputs), "each input once"


@pytest.mark.parametrize(("step", "context", "expected"), SAFETY)
def test_values_are_shown_safely(
    step: str, context: Mapping[str, object] | None, expected: str
) -> None:
    assert generate_friendly_status(step, context) == expected


@pytest.mark.parametrize(("step", "context", "expected"), TRUTH)
def test_sentences_claim_only_what_the_context_says(
    step: str, context: Mapping[str, object] | None, expected: str
) -> None:
    assert generate_friendly_status(step, context) == expected


@pytest.mark.parametrize(("step", "expected"), UNKNOWN_STEPS)
def test_unknown_steps_read_as_english(step: str, expected: str) -> None:
    assert generate_friendly_status(step) == expected


@pytest.mark.parametrize(("step", "expected"), CATALOG_SPELLINGS)
def test_other_spellings_of_catalog_steps_find_the_catalog(step: str, expected: str) -> None:
    assert generate_friendly_status(step) == expected


def shown_next(step: str, template: str) -> str:
    """What the next event of ``step`` shows once the LLM answered ``template``: the template
    when it passes the check and fills in for the context that asked, else the plain reading.
    (The writer's own path, through the SDKs and Redis, is in test_messages_llm/redis.)"""
    context = Context(LLM_CONTEXT)
    try:
        rendered = check_template(step, template, template_keys(context)).render(context)
    except TemplateError:
        rendered = None
    return rendered or humanize_step(step)


@pytest.mark.parametrize(("step", "template", "expected"), LLM_TEMPLATES)
def test_llm_templates_are_checked_for_meaning(step: str, template: str, expected: str) -> None:
    assert shown_next(step, template) == expected
