"""Talking to a running node over HTTP, for the commands that do (emit without Redis, watch)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout
from tidings.errors import TidingsError
from tidings.settings import Settings


def base_url(settings: Settings, url: str | None) -> str:
    return (url or f"http://{settings.host}:{settings.port}").rstrip("/")


async def post_json(url: str, body: object, token: str | None) -> Any:
    """POST JSON; the server's error sentence becomes a TidingsError, never a traceback."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with (
            ClientSession(timeout=ClientTimeout(total=10)) as session,
            session.post(url, json=body, headers=headers) as response,
        ):
            reply = await response.json(content_type=None)
    except (ClientError, TimeoutError, json.JSONDecodeError) as exc:
        raise TidingsError(f"Could not reach the server at {url}: {exc}") from exc
    if response.status >= 400:
        error = reply.get("error", {}) if isinstance(reply, dict) else {}
        raise TidingsError(error.get("message", f"The server answered {response.status}."))
    return reply
