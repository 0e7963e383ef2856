"""``tidings serve``: one node on uvloop, until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import errno
import logging
import sysconfig
from pathlib import Path

from aiohttp import web
from tidings.errors import TidingsError
from tidings.settings import Settings
from tidings.web.app import create_app
from tidings.web.page import STATIC_DIR

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
    if settings.reload and _installed(STATIC_DIR):
        logger.warning(
            "--reload watches %s, the copy pip installed, not your checkout: edit there, or "
            "install with pip install -e . to watch the checkout's server/web/static/",
            STATIC_DIR,
        )
    loop: asyncio.AbstractEventLoop
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is installed wherever it builds
        loop = asyncio.new_event_loop()
    try:
        web.run_app(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            loop=loop,
            print=lambda text: logger.info("%s", text.strip()),
            # SIGTERM to exit within two seconds: requests still running after 0.5 s are cancelled.
            shutdown_timeout=0.5,
        )
    except OSError as exc:
        where = f"{settings.host}:{settings.port}"
        if exc.errno == errno.EADDRINUSE:
            raise TidingsError(
                f"{where} is already in use (another tidings serve?): stop it, or pick another "
                "port with --port or TIDINGS_PORT"
            ) from None
        raise TidingsError(
            f"Cannot listen on {where} ({exc.strerror or exc}): check --host and --port "
            "(TIDINGS_HOST, TIDINGS_PORT)"
        ) from None
    return 0


def _installed(path: Path) -> bool:
    """True when the page's files are the copy in site-packages rather than a checkout."""
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    return path.resolve().is_relative_to(site)
