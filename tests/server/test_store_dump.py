"""``dump`` writes what ``json`` writes, numbers too (they skip the encoder), and refuses what no
JSON reader could read."""

from __future__ import annotations

import json
import math

import pytest
from tidings.errors import InvalidRequest
from tidings.store.base import dump


@pytest.mark.parametrize(
    "value",
    [0.1 + 0.2, 1e-310, 100.0, -0.0, 5, -3, 2**70, True, False, None, "é/x", {"a": 1.0}, [1, 2.5]],
)
def test_dump_writes_what_json_writes(value: object) -> None:
    assert dump(value) == json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, {"a": math.nan}])
def test_dump_refuses_numbers_no_json_reader_could_read(value: object) -> None:
    with pytest.raises(InvalidRequest, match="finite"):
        dump(value)
