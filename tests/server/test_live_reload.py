"""Hot reload's own channel: ``GET /api/live``, ``POST /api/live/trigger``, real changes only."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from tidings import Settings
from tidings.web.page import STATIC_DIR
from tidings.web.reload import Digests, reload_events

from tests.support import running_app

API_KEY = "k" * 32


async def next_message(response: aiohttp.ClientResponse, within: float = 10) -> dict[str, Any]:
    """The next ``data:`` line of an SSE response (lines are read whole, so a timeout between
    them loses nothing)."""
    async with asyncio.timeout(within):
        while True:
            line = await response.content.readline()
            assert line, "the stream ended"
            if line.startswith(b"data: "):
                return json.loads(line[len(b"data: ") :])  # type: ignore[no-any-return]


async def test_the_stream_opens_with_connected_and_carries_triggers() -> None:
    async with (
        running_app(Settings()) as (url, _),
        aiohttp.ClientSession() as http,
        http.get(f"{url}/api/live") as response,
    ):
        assert response.headers["Content-Type"] == "text/event-stream"
        connected = await next_message(response)
        assert connected["event"] == "connected" and connected["timestamp"].endswith("Z")
        async with http.post(
            f"{url}/api/live/trigger", params={"reload_type": "reload-page", "file": "manual"}
        ) as reply:
            assert reply.status == 200
            sent = (await reply.json())["event"]
        received = await next_message(response)
    assert received == sent
    assert {key: received[key] for key in ("event", "file", "path")} == {
        "event": "reload-page",
        "file": "manual",
        "path": "/static/manual",
    }


@pytest.mark.parametrize(
    "params", [{"reload_type": "explode"}, {"reload_type": "reload-css", "file": "../x.css"}]
)
async def test_a_bad_trigger_is_a_code_and_a_sentence(params: dict[str, str]) -> None:
    async with (
        running_app(Settings()) as (url, _),
        aiohttp.ClientSession() as http,
        http.post(f"{url}/api/live/trigger", params=params) as reply,
    ):
        body = await reply.json()
    assert reply.status == 400 and body["error"]["code"] == "invalid_request"


async def test_with_a_secret_the_trigger_takes_the_api_key() -> None:
    settings = Settings(secret="s" * 32, api_key=API_KEY)
    async with running_app(settings) as (url, _), aiohttp.ClientSession() as http:
        async with http.post(f"{url}/api/live/trigger") as refused:
            assert refused.status == 401
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with http.post(f"{url}/api/live/trigger", headers=headers) as allowed:
            assert allowed.status == 200


def test_only_a_change_of_content_counts(tmp_path: Path) -> None:
    (tmp_path / "a.css").write_text("a {}")
    digests = Digests(tmp_path)
    (tmp_path / "a.css").write_text("a {}")  # the same bytes, rewritten
    assert digests.changed([tmp_path / "a.css"]) == []
    (tmp_path / "a.css").write_text("a { color: red }")
    assert digests.changed([tmp_path / "a.css"]) == [tmp_path / "a.css"]
    (tmp_path / "b.css").write_text("b {}")  # a new file is a change
    assert digests.changed([tmp_path / "b.css", tmp_path / "gone.css"]) == [tmp_path / "b.css"]


async def test_the_watcher_tells_real_changes_only(tmp_path: Path) -> None:
    """Identical bytes, then a real change, until the watcher reports something: what it
    reports is the real change (the control: had a rewrite counted, it would come first)."""
    names = ("e2e-probe-a-same.css", "e2e-probe-b-changed.css")  # sorted: a first
    for name in names:
        (STATIC_DIR / name).write_text(f"/* {name} */")
    try:
        async with (
            running_app(Settings(reload=True)) as (url, _),
            aiohttp.ClientSession() as http,
            http.get(f"{url}/api/live") as response,
        ):
            assert (await next_message(response))["event"] == "connected"
            event = None
            for attempt in range(50):  # the watcher may not be watching yet: write again
                (STATIC_DIR / names[0]).write_text(f"/* {names[0]} */")
                (STATIC_DIR / names[1]).write_text(f"/* changed {attempt} */")
                with contextlib.suppress(TimeoutError):
                    event = await next_message(response, within=0.5)
                    break
    finally:
        for name in names:
            (STATIC_DIR / name).unlink(missing_ok=True)
    assert event is not None
    assert (event["event"], event["file"], event["path"]) == (
        "reload-css",
        names[1],
        f"/static/{names[1]}",
    )


def test_reload_events_by_kind() -> None:
    assert reload_events([Path("x/app.css"), Path("x/app.js")]) == [("reload-js", "app.js")]
    assert reload_events([Path("x/b.css"), Path("x/a.css")]) == [
        ("reload-css", "a.css"),
        ("reload-css", "b.css"),
    ]
