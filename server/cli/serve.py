"""``tidings serve``: one node on uvloop, until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web
from tidings.settings import Settings
from tidings.web.app import create_app

logger = logging.getLogger("tidings")


def serve(settings: Settings, host: str | None, port: int | None, reload: bool) -> int:
    updates: dict[str, object] = {}
    if reload:
        updates["reload"] = True
    if host:
        updates["host"] = host
    if port is not None:
        updates["port"] = port
    settings = settings.model_copy(update=updates)
    loop: asyncio.AbstractEventLoop
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is installed wherever it builds
        loop = asyncio.new_event_loop()
    web.run_app(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop=loop,
        print=lambda text: logger.info("%s", text.strip()),
        # SIGTERM to exit within two seconds: requests still running after 0.5 s are cancelled.
        shutdown_timeout=0.5,
    )
    return 0
