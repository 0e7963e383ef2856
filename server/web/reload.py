"""Development hot reload (``tidings serve --reload``): the page's files are watched, pages told.

A changed stylesheet goes out as ``reload-css`` and the page swaps that one ``<link>`` in place,
so its state, scroll position and socket survive; a changed script or page goes out as
``reload-js`` or ``reload-html`` and the page reloads. Each is a Socket.IO event broadcast to
every socket, data ``{"path": "/static/<name>"}``. Only :func:`tidings.web.page.setup_page` calls
this, and only when ``settings.reload`` is on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Final

import socketio
from aiohttp import web
from tidings.web.keys import SIO
from watchfiles import Change, awatch

__all__ = ["RELOAD_EVENTS", "reload_events", "setup_reload"]

logger = logging.getLogger(__name__)

RELOAD_EVENTS: Final = {".css": "reload-css", ".js": "reload-js", ".html": "reload-html"}
#: Milliseconds watchfiles lets a burst of writes (one save by an editor) settle into one batch.
DEBOUNCE_MS: Final = 200
#: Seconds before a watcher that failed (inotify limits, a removed directory) is started again.
RETRY_DELAY: Final = 1.0
STOP_TIMEOUT: Final = 5.0


def reload_events(changed: Iterable[Path]) -> list[tuple[str, dict[str, str]]]:
    """The events one batch of changed files calls for.

    A script or the page itself means a full reload, which also picks up any stylesheet of the
    same batch, so then that one event is all; otherwise one ``reload-css`` per stylesheet.
    """
    by_name: dict[str, list[str]] = {}
    for path in sorted(changed):
        name = RELOAD_EVENTS.get(path.suffix)
        if name is not None and not path.name.startswith("."):
            by_name.setdefault(name, []).append(f"/static/{path.name}")
    for full in ("reload-html", "reload-js"):
        if full in by_name:
            return [(full, {"path": by_name[full][0]})]
    return [("reload-css", {"path": path}) for path in by_name.get("reload-css", [])]


def setup_reload(app: web.Application, directory: Path) -> None:
    """Watch ``directory`` for as long as the app runs."""

    async def watching(app: web.Application) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(_watch(app[SIO], directory, stop), name="hot reload")
        logger.info("hot reload: watching %s", directory)
        try:
            yield
        finally:
            stop.set()
            try:
                async with asyncio.timeout(STOP_TIMEOUT):
                    await task
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app.cleanup_ctx.append(watching)


async def _watch(sio: socketio.AsyncServer, directory: Path, stop: asyncio.Event) -> None:
    """Broadcast the events of each batch of changes until ``stop`` is set; survives failures."""
    while not stop.is_set():
        try:
            async for changes in awatch(
                directory, debounce=DEBOUNCE_MS, recursive=False, stop_event=stop
            ):
                changed = [Path(path) for change, path in changes if change != Change.deleted]
                for name, data in reload_events(changed):
                    logger.info("hot reload: %s %s", name, data["path"])
                    await sio.emit(name, data)
        except Exception:
            logger.exception("hot reload: watching %s failed; starting again", directory)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RETRY_DELAY):
                    await stop.wait()
