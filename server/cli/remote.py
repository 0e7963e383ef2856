"""Talking to a running node over HTTP, for the commands that do (emit without Redis, watch)."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout
from tidings.errors import TidingsError
from tidings.settings import Settings


def base_url(settings: Settings, url: str | None) -> str:
    return (url or f"http://{settings.host}:{settings.port}").rstrip("/")


def unreachable(url: str, exc: BaseException) -> str:
    reason = str(exc) or type(exc).__name__
    return (
        f"Could not reach the server at {url} ({reason}): start it with tidings serve, "
        "or point --url (or TIDINGS_HOST and TIDINGS_PORT) at it"
    )


async def post_json(url: str, body: object, token: str | None) -> Any:
    """POST JSON; the server's error sentence becomes a TidingsError, never a traceback."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        async with (
            ClientSession(timeout=ClientTimeout(total=10)) as session,
            session.post(url, json=body, headers=headers) as response,
        ):
            reply = await response.json(content_type=None)
    except (ClientError, TimeoutError, OSError) as exc:
        raise TidingsError(unreachable(url, exc)) from exc
    except json.JSONDecodeError as exc:
        raise TidingsError(f"{url} did not answer as a tidings server does: check --url") from exc
    if response.status >= 400:
        error = reply.get("error", {}) if isinstance(reply, dict) else {}
        message = error.get("message", f"The server answered {response.status}.")
        if response.status == 401:
            message += (
                " Set TIDINGS_API_KEY, the same for the server and for tidings emit "
                "(tidings init writes it to .env)."
            )
        raise TidingsError(message)
    return reply
