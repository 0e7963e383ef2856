"""``tidings emit``: through Redis when the nodes share one, otherwise through the HTTP API."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .emitter import ProgressEmitter
from .settings import Settings


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


async def emit(settings: Settings, args: argparse.Namespace) -> int:
    body = _body(args)
    if settings.redis_url and not args.url:
        async with ProgressEmitter.from_url(settings.redis_url, settings) as emitter:
            event = await emitter.emit_request(args.job, body)
    else:
        from .cli import base_url, post_json

        key = settings.api_key.get_secret_value() if settings.api_key else None
        url = f"{base_url(settings, args.url)}/api/jobs/{args.job}/progress"
        event = (await post_json(url, body, key))["event"]
    print(json.dumps(event) if event else "nothing changed")
    return 0
