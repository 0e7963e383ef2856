"""The merge rules as data: what the Lua script is written with is what the memory store runs."""

from __future__ import annotations

import json

import redis
from tidings.constants import TERMINAL_STATUSES
from tidings.store import Limits
from tidings.store.rules import Rules, _lua, extra_text


def test_terminal_statuses_are_the_ones_with_no_successor() -> None:
    rules = Rules()
    assert {status for status in rules.transitions if rules.terminal(status)} == TERMINAL_STATUSES


def test_status_moves_forward_only_and_progress_starts_a_queued_job() -> None:
    rules = Rules()
    assert rules.next_status("queued", None, "upsert") == "processing"
    assert rules.next_status("queued", None, "create") == "queued"
    assert rules.next_status("processing", "queued", "upsert") == "processing"  # ignored
    assert rules.next_status("processing", "done", "update") == "done"


def test_as_json_is_plain_json_with_every_figure() -> None:
    rules = Rules(Limits(history=7, max_steps=3))
    shape = json.loads(json.dumps(rules.as_json()))
    assert shape == {
        "limits": {
            "history": 7,
            "active_ttl": 7 * 86_400,
            "done_ttl": 86_400,
            "max_extra_bytes": 16_384,
            "max_steps": 3,
        },
        "transitions": {
            "queued": ["cancelled", "done", "error", "processing", "queued"],
            "processing": ["cancelled", "done", "error", "processing"],
            "done": [],
            "error": [],
            "cancelled": [],
        },
        "implicit": {"queued": "processing"},
        "initial": "queued",
        "eta": {"weight": 0.3, "decimals": 1},
        "number_digits": 14,
    }


def test_the_script_is_written_with_the_same_figures(redis_url: str) -> None:
    """``as_lua()`` read back through Redis's own Lua and cjson is ``as_json()``."""
    rules = Rules(Limits(history=7, max_steps=3), eta_weight=0.25)
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        written = json.loads(client.eval(f"return cjson.encode({rules.as_lua()})", 0))
        odd = 'q"uote \\ é\n\x7f'
        assert client.eval(f"return {_lua(odd)}", 0) == odd
    expected = rules.as_json()
    # cjson writes an empty Lua table as an object: the terminal statuses' lists
    expected["transitions"] = {s: after or {} for s, after in expected["transitions"].items()}
    assert written == expected


def test_eta_rounds_halves_up_as_lua_does() -> None:
    assert Rules().eta_seconds(87.5, 10.0) == 1.3
    assert round(1.25, 1) == 1.2  # control: Python's own rounding would answer differently


def test_numbers_keep_fourteen_digits_as_lua_tostring_writes_them() -> None:
    assert Rules().stored(100 / 3) == 33.333333333333
    assert Rules().stored(12.5) == 12.5


def test_extra_text_counts_keys_as_cjson_writes_them() -> None:
    assert extra_text({"a/b": "1", "\x7f": "2"}) == '{"a\\/b":1,"\\u007f":2}'
    assert json.loads(extra_text({"a/b": "1"})) == {"a/b": 1}
