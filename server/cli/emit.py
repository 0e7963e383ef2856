"""``tidings emit``: through Redis when the nodes share one, otherwise through the HTTP API.

``--follow FILE`` watches a JSON status file written by a tool that can only write files
(``{"step", "progress", "status", ...}``, the body of ``POST /api/jobs/{id}/progress``) and emits
each real change, debounced, until the job ends.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import watchfiles
from tidings.constants import TERMINAL_STATUSES
from tidings.errors import TidingsError
from tidings.models import Event
from tidings.settings import Settings
from tidings.worker.emitter import ProgressEmitter

logger = logging.getLogger(__name__)

Send = Callable[[str, dict[str, Any]], Awaitable[Event | None]]


def _body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {"step": args.step}
    if args.progress is not None:
        body["progress"] = args.progress
    if args.context:
        body["context"] = dict(args.context)
    if args.complete:
        body["status"] = "done"
    if args.fail:
        body["status"] = "error"
        body["error"] = {"code": "failed", "message": args.fail}
    return body


@contextlib.asynccontextmanager
async def _sender(settings: Settings, url: str | None) -> AsyncIterator[Send]:
    if settings.redis_url and not url:
        async with ProgressEmitter.from_url(settings.redis_url, settings) as emitter:
            yield emitter.emit_request
        return
    from tidings.cli.remote import base_url, post_json

    key = settings.api_key.get_secret_value() if settings.api_key else None
    root = base_url(settings, url)

    async def post(job_id: str, body: dict[str, Any]) -> Event | None:
        reply = await post_json(f"{root}/api/jobs/{job_id}/progress", body, key)
        event: Event | None = reply["event"]
        return event

    yield post


def _show(event: Event | None) -> None:
    print(json.dumps(event) if event else "nothing changed", flush=True)


async def emit(settings: Settings, args: argparse.Namespace) -> int:
    async with _sender(settings, args.url) as send:
        if args.follow:
            return await _follow(send, args.job, Path(args.follow), args.debounce)
        _show(await send(args.job, _body(args)))
    return 0


def _read(path: Path) -> dict[str, Any] | None:
    """The status file's update, or None while it is missing or half-written."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (UnicodeDecodeError, json.JSONDecodeError):
        logger.warning("%s is not valid JSON (yet); waiting for the next write", path)
        return None
    if not isinstance(body, dict):
        logger.warning("%s must hold a JSON object; waiting for the next write", path)
        return None
    return body


async def _follow(send: Send, job_id: str, path: Path, debounce_ms: int) -> int:
    last: dict[str, Any] | None = None

    async def changed() -> bool:
        """Emit the file's update if it differs from the last one; True once the job ended."""
        nonlocal last
        body = _read(path)
        if body is None or body == last:
            return False
        last = body
        try:
            _show(await send(job_id, body))
        except TidingsError as exc:
            print(f"tidings: error: {exc.message}", file=sys.stderr, flush=True)
            return exc.code == "job_terminal"
        return body.get("status") in TERMINAL_STATUSES

    if await changed():
        return 0
    async for _ in watchfiles.awatch(
        path.parent,
        debounce=debounce_ms,
        step=20,
        watch_filter=lambda _change, name: Path(name) == path,
    ):
        if await changed():
            return 0
    return 0
