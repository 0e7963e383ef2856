"""``tidings serve``: one node on uvloop, until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import errno
import logging
import sysconfig
from pathlib import Path

from aiohttp import web
from aiohttp.web_runner import GracefulExit
from tidings.errors import TidingsError
from tidings.settings import Settings
from tidings.web.app import create_app
from tidings.web.page import STATIC_DIR
from tidings.web.runner import JsonErrorRunner

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
    try:
        with asyncio.Runner(loop_factory=_new_loop) as runner:
            runner.run(_run(create_app(settings), settings.host, settings.port))
    except (GracefulExit, KeyboardInterrupt):  # SIGTERM, SIGINT: the runner has cleaned up
        pass
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


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is installed wherever it builds
        return asyncio.new_event_loop()


async def _run(app: web.Application, host: str, port: int) -> None:
    """``web.run_app``'s loop (and keep-alive) with ``JsonErrorRunner``: run_app takes no runner."""
    # SIGTERM to exit within two seconds: requests still running after 0.5 s are cancelled.
    runner = JsonErrorRunner(app, handle_signals=True, shutdown_timeout=0.5, keepalive_timeout=75)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        logger.info("listening on %s", site.name)
        await asyncio.Event().wait()  # until a signal raises GracefulExit
    finally:
        await runner.cleanup()


def _installed(path: Path) -> bool:
    """True when the page's files are the copy in site-packages rather than a checkout."""
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    return path.resolve().is_relative_to(site)
