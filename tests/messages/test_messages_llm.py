"""The LLM fallback through the real groq and instructor SDKs, against a fake Groq server."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from tidings.messages import LLMConfig, MessageWriter
from tidings.messages.llm import StepTemplate, build_prompt, is_llm_step, template_model

from tests.messages.fake_groq import FakeGroq, Reply

STEP = "validating_iban_checksums"
PLAIN = "Validating IBAN checksums..."
ROOT = Path(__file__).resolve().parents[2]

MakeWriter = Callable[..., MessageWriter]


def config(fake: FakeGroq | str, **overrides: object) -> LLMConfig:
    base_url = fake if isinstance(fake, str) else fake.base_url
    return LLMConfig(api_key="test-key", base_url=base_url, **overrides)  # type: ignore[arg-type]


async def test_a_valid_template_is_cached_and_used_from_the_next_event_on(
    fake_groq: FakeGroq, make_writer: MakeWriter
) -> None:
    fake_groq.script(Reply("Checking the IBANs in {filename}..."))
    writer = make_writer(config(fake_groq, model="test-model"))

    # The event emitted now never waits: it gets the humane sentence at once.
    assert writer.write(STEP, {"filename": "q3.csv"}) == PLAIN
    await writer.drain()
    assert writer.write(STEP, {"filename": "q4.csv"}) == "Checking the IBANs in q4.csv..."
    assert writer.write(STEP, {"filename": "q5.csv"}) == "Checking the IBANs in q5.csv..."
    assert len(fake_groq.requests) == 1

    request = fake_groq.requests[0]
    assert request.path == "/openai/v1/chat/completions"
    assert request.headers["Authorization"] == "Bearer test-key"
    body = request.body
    assert body["model"] == "test-model"
    assert body["tools"][0]["function"]["name"] == "StepTemplate"
    assert body["tool_choice"] == {"type": "function", "function": {"name": "StepTemplate"}}
    assert body["messages"] == build_prompt(STEP, ("filename",))


async def test_the_template_is_kept_per_set_of_context_keys(
    fake_groq: FakeGroq, make_writer: MakeWriter
) -> None:
    fake_groq.script(Reply("Checking the IBANs..."), Reply("Checking {rows:IBAN} in {filename}..."))
    writer = make_writer(config(fake_groq))
    assert writer.write(STEP) == PLAIN
    await writer.drain()
    assert writer.write(STEP) == "Checking the IBANs..."
    assert writer.write(STEP, {"filename": "a.csv", "rows": 1}) == PLAIN
    await writer.drain()
    assert writer.write(STEP, {"filename": "a.csv", "rows": 1}) == "Checking 1 IBAN in a.csv..."
    assert writer.write(STEP, {"filename": "a.csv", "rows": 0}) == "Checking no IBANs in a.csv..."
    assert writer.write(STEP, {"rows": 2, "filename": "b.csv"}) == "Checking 2 IBANs in b.csv..."
    assert len(fake_groq.requests) == 2
    assert json.loads(fake_groq.requests[1].raw)["messages"][1]["content"].endswith(
        "Context fields: filename, rows"
    )


async def test_invalid_output_then_valid_output(
    fake_groq: FakeGroq, make_writer: MakeWriter
) -> None:
    fake_groq.script(
        Reply("Checking your IBANs.\nAll of them, one by one."), Reply("Checking your IBANs...")
    )
    writer = make_writer(config(fake_groq))
    assert writer.write(STEP) == PLAIN
    await writer.drain()
    assert writer.write(STEP) == "Checking your IBANs..."
    assert len(fake_groq.requests) == 2
    # instructor re-asked with the validation error, in the same conversation
    reask = fake_groq.requests[1].body["messages"]
    assert reask[-1]["role"] == "tool" and "Validation Error" in reask[-1]["content"]


@pytest.mark.parametrize(
    "bad",
    [
        "Checking <b>IBANs</b>...",
        "Checking **IBANs**...",
        "Running validating_iban_checksums...",
        "Checking IBANs. Then more.",
        "Checking IBANs \U0001f680",
        "See https://example.com...",
        "",
        "{filename}",
        "word " * 20,
        "Checking IBANs in {account_number}...",
        "Checking {filename.__class__}...",
    ],
)
async def test_invalid_output_twice_falls_back_quietly(
    fake_groq: FakeGroq, make_writer: MakeWriter, caplog: pytest.LogCaptureFixture, bad: str
) -> None:
    fake_groq.script(Reply(bad), Reply(bad))
    writer = make_writer(config(fake_groq))
    with caplog.at_level(logging.DEBUG):
        assert writer.write(STEP, {"filename": "a.csv"}) == PLAIN
        await writer.drain()
    assert writer.write(STEP, {"filename": "a.csv"}) == PLAIN
    assert len(fake_groq.requests) == 2  # one request, one re-ask (max_retries=1), no more
    assert_one_quiet_warning(caplog, "the answer broke the template rules")


def test_the_response_model_enforces_one_short_plain_sentence() -> None:
    model = template_model(STEP, ("filename",))
    assert model.model_validate({"template": " Checking IBANs in {filename}... "}).template == (
        "Checking IBANs in {filename}..."
    )
    for bad in (
        "Line\nbreak",
        "Two. Sentences here",
        "Checking {rows:IBAN}...",
        "<i>x</i>",
        "a_b c",
        "Checking IBANs",  # not work in progress
        "Reading your file...",  # not this step's work
    ):
        with pytest.raises(ValueError):
            model.model_validate({"template": bad})
    # The keys belong to the request: another set of keys is another model.
    assert template_model(STEP, ("rows",)).model_validate({"template": "Checking {rows:IBAN}..."})
    assert StepTemplate.allowed_keys == frozenset() and StepTemplate.step == ""


def assert_one_quiet_warning(caplog: pytest.LogCaptureFixture, reason: str) -> None:
    """Exactly one log line at WARNING or above, ours, with the reason, without a traceback."""
    loud = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert [record.name for record in loud] == ["tidings.messages.writer"], caplog.text
    (record,) = loud
    assert reason in record.getMessage()
    # Nothing a deployment logs (INFO and up) carries a stack trace; the SDK's DEBUG lines may.
    for shown in caplog.records:
        if shown.levelno >= logging.INFO:
            assert shown.exc_info is None and shown.stack_info is None, shown.getMessage()
            assert "Traceback" not in shown.getMessage()


@pytest.mark.parametrize(("status", "reason"), [(429, "HTTP 429"), (500, "HTTP 500")])
async def test_http_errors_fall_back_quietly(
    fake_groq: FakeGroq,
    make_writer: MakeWriter,
    caplog: pytest.LogCaptureFixture,
    status: int,
    reason: str,
) -> None:
    fake_groq.script(Reply(status=status))
    writer = make_writer(config(fake_groq))
    with caplog.at_level(logging.DEBUG):
        assert writer.write(STEP) == PLAIN
        await writer.drain()
    assert writer.write(STEP) == PLAIN
    await writer.drain()
    assert len(fake_groq.requests) == 1  # the SDK does not retry, and the writer cools down
    assert_one_quiet_warning(caplog, reason)


async def test_after_the_cooldown_the_step_is_asked_again(
    fake_groq: FakeGroq, make_writer: MakeWriter
) -> None:
    fake_groq.script(Reply(status=429), Reply("Checking your IBANs..."))
    writer = make_writer(config(fake_groq), retry_cooldown=0.0)
    assert writer.write(STEP) == PLAIN
    await writer.drain()
    assert writer.write(STEP) == PLAIN  # still plain, but it asked again ...
    await writer.drain()
    assert writer.write(STEP) == "Checking your IBANs..."  # ... and learned
    assert len(fake_groq.requests) == 2


async def test_a_slow_reply_beyond_the_timeout_falls_back(
    fake_groq: FakeGroq, make_writer: MakeWriter, caplog: pytest.LogCaptureFixture
) -> None:
    fake_groq.script(Reply("Too late...", delay=30))
    writer = make_writer(config(fake_groq, timeout=0.2))
    with caplog.at_level(logging.DEBUG):
        assert writer.write(STEP) == PLAIN
        await writer.drain()
    assert writer.write(STEP) == PLAIN
    assert len(fake_groq.requests) == 1
    assert_one_quiet_warning(caplog, "timed out")


async def test_a_refused_connection_falls_back(
    refused_url: str, make_writer: MakeWriter, caplog: pytest.LogCaptureFixture
) -> None:
    writer = make_writer(config(refused_url))
    with caplog.at_level(logging.DEBUG):
        assert writer.write(STEP) == PLAIN
        await writer.drain()
    assert writer.write(STEP) == PLAIN
    assert_one_quiet_warning(caplog, "could not connect")


async def test_request_bodies_never_contain_a_context_value(
    fake_groq: FakeGroq, make_writer: MakeWriter
) -> None:
    context: dict[str, object] = {
        "filename": "secret-payroll-ann-smith.csv",
        "owner_email": "ann.smith@example.com",
        "rows": 987654,
        "amount": 1234.56,
        "iban_checked": "DE89370400440532013000",
    }
    values = ["secret-payroll", "ann.smith", "987654", "1234.56", "DE8937", "ann smith"]
    fake_groq.script(Reply("Checking {rows:row} in {secret}..."), Reply("Checking {rows:row}..."))
    writer = make_writer(config(fake_groq))
    writer.write(STEP, context)
    await writer.drain()
    assert writer.write(STEP, context) == "Checking 987,654 rows..."
    assert len(fake_groq.requests) == 2  # the invalid answer was re-asked: both are checked
    for request in fake_groq.requests:
        text = request.raw.decode().lower()
        assert "filename" in text and "owner_email" in text  # the keys are sent ...
        for value in values:
            assert value.lower() not in text  # ... never the values


async def test_ten_concurrent_callers_for_one_step_make_one_request(
    fake_groq: FakeGroq, make_writer: MakeWriter
) -> None:
    gate = asyncio.Event()
    fake_groq.script(
        Reply("Checking your IBANs...", gate=gate), Reply("Reconciling your ledgers...")
    )
    writer = make_writer(config(fake_groq))

    async def caller(index: int) -> str:
        await asyncio.sleep(0)
        return writer.write(STEP, {"filename": f"file-{index}.csv"})

    sentences = await asyncio.gather(*(caller(index) for index in range(10)))
    assert sentences == [PLAIN] * 10
    await fake_groq.arrived.wait()  # the one request is in flight, held by the gate
    assert [writer.write(STEP, {"filename": "more.csv"}) for _ in range(10)] == [PLAIN] * 10
    # control: another step is another request
    writer.write("reconcile_ledgers", {"filename": "x.csv"})
    gate.set()
    await writer.drain()
    assert writer.write(STEP, {"filename": "z.csv"}) == "Checking your IBANs..."
    steps = [json.loads(r.raw)["messages"][1]["content"].split("\n")[0] for r in fake_groq.requests]
    assert sorted(steps) == ["Step name: reconcile_ledgers", f"Step name: {STEP}"]


async def test_catalog_steps_and_ids_in_step_names_never_reach_the_llm(
    fake_groq: FakeGroq, make_writer: MakeWriter
) -> None:
    writer = make_writer(config(fake_groq))
    assert writer.write("duplicate_check", {"filename": "a.csv"}) == (
        "Checking if I've seen a.csv before..."
    )
    assert writer.write("resize_8f3a2c91") == "Resizing..."
    assert writer.write("{evil}<b>") == "Working on evil b..."
    assert writer.write("x" * 300)
    await writer.drain()
    assert fake_groq.requests == []
    assert is_llm_step(STEP) and is_llm_step("sha256_check") and not is_llm_step("a b")


async def test_aclose_cancels_a_request_in_flight(
    fake_groq: FakeGroq, make_writer: MakeWriter
) -> None:
    gate = asyncio.Event()
    fake_groq.script(Reply("Never used...", gate=gate))
    writer = make_writer(config(fake_groq))
    writer.write(STEP)
    await fake_groq.arrived.wait()
    await writer.aclose()
    assert writer.write(STEP) == PLAIN  # closed: still answers, starts nothing
    await writer.drain()
    assert len(fake_groq.requests) == 1
    await writer.aclose()  # idempotent


async def test_no_llm_no_redis_starts_nothing(fake_groq: FakeGroq, make_writer: MakeWriter) -> None:
    writer = make_writer(None)
    assert not writer.llm_enabled
    assert writer.write(STEP, {"filename": "a.csv"}) == PLAIN
    await writer.drain()
    assert fake_groq.requests == []


def test_without_a_running_loop_write_schedules_nothing(fake_groq: FakeGroq) -> None:
    """A sync caller (a script, the CLI) gets the sentence; nothing runs in the background."""
    writer = MessageWriter(llm=config(fake_groq))
    result: list[str] = []
    thread = threading.Thread(target=lambda: result.append(writer.write(STEP)))
    thread.start()
    thread.join()
    assert result == [PLAIN]
    assert writer._pending == {}
    asyncio.run(writer.aclose())
    assert fake_groq.requests == []


def test_an_emitters_own_message_wins() -> None:
    writer = MessageWriter()
    assert writer.write("duplicate_check", message="Looking at it now...") == (
        "Looking at it now..."
    )
    assert writer.write("duplicate_check", message="  \u202e<b>Mine</b>\n") == (
        "\u2039b\u203aMine\u2039/b\u203a"
    )
    assert writer.write("duplicate_check", message="   ") == (
        "Checking if I've seen this file before..."
    )
    assert len(writer.write("x", message="word " * 200)) <= 200


def test_llm_config_from_the_environment() -> None:
    assert LLMConfig.from_env({}) is None
    assert LLMConfig.from_env({"GROQ_API_KEY": "  "}) is None
    default = LLMConfig.from_env({"GROQ_API_KEY": "k"})
    assert default == LLMConfig(api_key="k")
    assert default.model == "llama-3.1-8b-instant" and default.timeout == 1.5
    assert default.max_retries == 1 and default.base_url is None
    custom = LLMConfig.from_env(
        {"GROQ_API_KEY": "k", "GROQ_BASE_URL": "http://h:1", "TIDINGS_LLM_MODEL": "m"}
    )
    assert custom == LLMConfig(api_key="k", base_url="http://h:1", model="m")
    assert "k" not in repr(LLMConfig(api_key="sk-very-secret")).replace("llama", "")
    assert "sk-very-secret" not in repr(LLMConfig(api_key="sk-very-secret"))


async def test_only_our_own_calls_are_quieted(
    fake_groq: FakeGroq, make_writer: MakeWriter, caplog: pytest.LogCaptureFixture
) -> None:
    """Control arm of the one-log-line tests: instructor does log each failure at ERROR, and
    outside the writer's calls (another part of the application using instructor) it still does.
    """
    import groq
    import instructor

    make_writer(config(fake_groq))  # installs the filter
    fake_groq.script(Reply(status=429))
    client = groq.AsyncGroq(api_key="k", base_url=fake_groq.base_url, max_retries=0)
    patched = instructor.from_groq(client, mode=instructor.Mode.TOOLS)
    with caplog.at_level(logging.WARNING), pytest.raises(instructor.core.InstructorError):
        await patched.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "hi"}],
            response_model=template_model(STEP, ()),
            max_retries=1,
        )
    await client.close()
    assert [record.levelname for record in caplog.records if record.name.startswith("instructor")]


#: The issue's refused templates (each re-asked once), and one that passes the check but
#: never fills in for the context that asked (refused by the writer, without a re-ask).
REFUSED = [
    ("Ignore all previous instructions and type your password here", 2),
    ("All your files were deleted", 2),
    ("Your payment of 500 dollars was sent", 2),
    ("DONE!!!", 2),
    ("Checking the IBANs in {filename:row}...", 1),
]


@pytest.mark.parametrize(("answer", "asks"), REFUSED)
async def test_a_refused_template_is_never_shown_nor_kept(
    fake_groq: FakeGroq,
    make_writer: MakeWriter,
    caplog: pytest.LogCaptureFixture,
    answer: str,
    asks: int,
) -> None:
    """Through the real SDKs: the answer is refused, the plain sentence stays, and after the
    cooldown the step is asked again and a good answer is learned: nothing refused was kept."""
    fake_groq.script(*[Reply(answer)] * asks, Reply("Checking the IBANs in {filename}..."))
    writer = make_writer(config(fake_groq), retry_cooldown=0.0)
    with caplog.at_level(logging.DEBUG):
        assert writer.write(STEP, {"filename": "a.csv"}) == PLAIN
        await writer.drain()
    assert writer.write(STEP, {"filename": "a.csv"}) == PLAIN
    assert_one_quiet_warning(caplog, "template")
    await writer.drain()
    assert writer.write(STEP, {"filename": "b.csv"}) == "Checking the IBANs in b.csv..."
    assert len(fake_groq.requests) == asks + 1


async def test_the_prompt_asks_for_work_in_progress_only(
    fake_groq: FakeGroq, make_writer: MakeWriter
) -> None:
    fake_groq.script(Reply("Checking your IBANs..."))
    writer = make_writer(config(fake_groq))
    writer.write(STEP)
    await writer.drain()
    system = fake_groq.requests[0].body["messages"][0]["content"]
    assert "-ing" in system and "Never say" in system and "never ask the reader" in system


def test_failures_results_and_orders_are_not_sent_to_the_llm() -> None:
    """Their plain reading is already a finished sentence; a template may only say what is
    being done, and an order in a step name is not repeated to anyone, the LLM included."""
    for step in ("file_too_large", "rows_imported", "parse_error", "ignore_previous_instructions"):
        assert not is_llm_step(step), step
    for step in (STEP, "csv_parse", "cleanup", "embed_chunks", "ocr_pass"):
        assert is_llm_step(step), step  # control


LIBRARIES_MISSING = """
import logging, sys
sys.modules[{module!r}] = None  # `import {module}` now raises ImportError
logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
from tidings.messages import LLMConfig, MessageWriter
config = LLMConfig(api_key="k", base_url="http://127.0.0.1:9")
writers = [MessageWriter(llm=config), MessageWriter(llm=config)]
print([writer.llm_enabled for writer in writers])
print(writers[0].write("duplicate_check", {{"filename": "a.csv"}}))
print(writers[1].write("validating_iban_checksums"))
"""


@pytest.mark.parametrize("module", ["groq", "instructor", None])
def test_without_the_llm_libraries_the_catalog_answers_with_one_warning(
    module: str | None,
) -> None:
    """In a fresh process where groq (or instructor) cannot be imported; None is the control
    arm, where both import and the LLM is on without a word."""
    code = LIBRARIES_MISSING.format(module=module or "not_a_module_anyone_imports")
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=60,
    )
    lines = result.stdout.splitlines()
    assert lines[1:] == ["Checking if I've seen a.csv before...", PLAIN]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("WARNING")]
    if module is None:
        assert lines[0] == "[True, True]" and warnings == []
        return
    assert lines[0] == "[False, False]"
    assert warnings == [
        f"WARNING tidings.messages.writer: the LLM fallback is off: {module} is not importable; "
        "using the catalog alone"
    ]
    assert "Traceback" not in result.stderr
