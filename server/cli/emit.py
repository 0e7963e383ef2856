"""``tidings emit``: through Redis when the nodes share one, otherwise through the HTTP API.

``--follow FILE`` watches a JSON status file written by a tool that can only write files
(``{"step", "progress", "status", ...}``, the body of ``POST /api/jobs/{id}/progress``) and emits
each real change, debounced, until the job ends.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import logging
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import watchfiles
from tidings.constants import TERMINAL_STATUSES
from tidings.errors import StoreUnavailable, TidingsError
from tidings.messages import BUILTIN_STEPS
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
        path = f"/api/jobs/{quote(job_id, safe='')}/progress"
        reply = await post_json(f"{root}{path}", body, key)
        event: Event | None = reply["event"]
        return event

    yield post


def _show(event: Event | None) -> None:
    print(json.dumps(event) if event else "nothing changed", flush=True)


def step_hint(step: str) -> str | None:
    """A note for a step that is not in the catalog but is close to one (a typo, probably)."""
    if step in BUILTIN_STEPS:
        return None
    near = difflib.get_close_matches(step, list(BUILTIN_STEPS), n=1, cutoff=0.8)
    if not near:
        return None
    return f"{step!r} is not a catalog step; did you mean {near[0]!r}? (sent as it is)"


def _store_error(settings: Settings, exc: StoreUnavailable) -> TidingsError:
    """Which Redis did not answer, and why: the emitter's sentence knows neither."""
    where = urlsplit(settings.redis_url or "")
    cause: BaseException = exc
    while cause.__cause__ is not None:  # the retries' reason, under the emitter's sentences
        cause = cause.__cause__
    why = f" ({cause})" if cause is not exc else ""
    return TidingsError(
        f"{exc.message} Redis at {where.hostname}:{where.port or 6379} did not answer{why}: "
        "start redis-server there, or fix TIDINGS_REDIS_URL (the server's and every worker's "
        "must be the same)"
    )


async def emit(settings: Settings, args: argparse.Namespace) -> int:
    if not args.follow and (hint := step_hint(args.step)):
        print(f"tidings: note: {hint}", file=sys.stderr, flush=True)
    try:
        async with _sender(settings, args.url) as send:
            if args.follow:
                return await _follow(send, args.job, Path(args.follow), args.debounce)
            _show(await send(args.job, _body(args)))
    except StoreUnavailable as exc:
        raise _store_error(settings, exc) from exc
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
