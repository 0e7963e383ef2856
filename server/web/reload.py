"""Hot reload: the page's files are watched, pages told, over Socket.IO and ``GET /api/live``.

A changed stylesheet goes out as ``reload-css`` and the page swaps that one ``<link>`` in place,
so its state, scroll position and socket survive; a changed script or page goes out as
``reload-js`` or ``reload-html`` and the page reloads; ``POST /api/live/trigger`` sends any of
them by hand, ``reload-page`` included. A change is a change of content: every file's SHA-256 is
kept, so an editor that rewrites identical bytes, or touches a file, reloads nothing.

Every event is ``{"event", "file", "path", "timestamp"}`` (``path`` is the URL the page loads the
file from), broadcast to every Socket.IO socket under its own name and written to every
``GET /api/live`` stream as an unnamed SSE message, which starts with ``{"event": "connected"}``
so that an ``EventSource``'s ``onmessage`` sees both. The stream and the trigger always answer;
the files are watched only under ``tidings serve --reload``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import socketio
from aiohttp import web
from tidings.errors import InvalidRequest
from tidings.web.api import bearer
from tidings.web.keys import AUTHORITY, LIVE, SETTINGS, SIO
from watchfiles import awatch

__all__ = ["RELOAD_EVENTS", "Digests", "LiveReload", "reload_events", "setup_live"]

logger = logging.getLogger(__name__)

RELOAD_EVENTS: Final = {".css": "reload-css", ".js": "reload-js", ".html": "reload-html"}
#: What ``POST /api/live/trigger`` may send: the file events and a plain reload.
TRIGGERS: Final = frozenset({*RELOAD_EVENTS.values(), "reload-page"})
#: Milliseconds watchfiles lets a burst of writes (one save by an editor) settle into one batch.
DEBOUNCE_MS: Final = 200
#: Seconds before a watcher that failed (inotify limits, a removed directory) is started again.
RETRY_DELAY: Final = 1.0
STOP_TIMEOUT: Final = 5.0
#: Events a ``/api/live`` stream holds for a reader that does not read; past it the oldest go
#: (a reload event that follows makes the older ones moot).
STREAM_QUEUE: Final = 16
#: Seconds between SSE comments that keep an idle ``/api/live`` stream open through proxies.
KEEPALIVE: Final = 15.0
MAX_FILE_NAME: Final = 200


def reload_events(changed: Iterable[Path]) -> list[tuple[str, str]]:
    """The events one batch of changed files calls for, as ``(event, file name)``.

    A script or the page itself means a full reload, which also picks up any stylesheet of the
    same batch, so then that one event is all; otherwise one ``reload-css`` per stylesheet.
    """
    by_event: dict[str, list[str]] = {}
    for path in sorted(changed):
        event = RELOAD_EVENTS.get(path.suffix)
        if event is not None and not path.name.startswith("."):
            by_event.setdefault(event, []).append(path.name)
    for full in ("reload-html", "reload-js"):
        if full in by_event:
            return [(full, by_event[full][0])]
    return [("reload-css", name) for name in by_event.get("reload-css", [])]


class Digests:
    """The SHA-256 of every file of a directory, to tell a real change from a rewrite."""

    def __init__(self, directory: Path) -> None:
        self._digests = {path: _digest(path) for path in directory.iterdir() if path.is_file()}

    def changed(self, paths: Iterable[Path]) -> list[Path]:
        """Those of ``paths`` whose content differs from last time (a new file counts)."""
        really = []
        for path in paths:
            digest = _digest(path)
            if digest is not None and self._digests.get(path) != digest:
                really.append(path)
            self._digests[path] = digest
        return really


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:  # removed, or a directory: nothing to reload
        return None


class LiveReload:
    """Everyone who hears of a reload: the node's Socket.IO sockets and its ``/api/live``
    streams."""

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self._sio = sio
        self._streams: set[asyncio.Queue[dict[str, str] | None]] = set()

    async def broadcast(self, event: str, file: str) -> dict[str, str]:
        data = message(event, file=file, path=f"/static/{file}" if file else "")
        logger.info("hot reload: %s %s", event, file)
        for queue in self._streams:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(data)
        await self._sio.emit(event, data)
        return data

    def close(self) -> None:
        """End every stream (at shutdown: an open stream must not hold the node up)."""
        for queue in self._streams:
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(None)

    @contextlib.contextmanager
    def stream(self) -> Iterator[asyncio.Queue[dict[str, str] | None]]:
        queue: asyncio.Queue[dict[str, str] | None] = asyncio.Queue(STREAM_QUEUE)
        self._streams.add(queue)
        try:
            yield queue
        finally:
            self._streams.discard(queue)


def message(event: str, *, file: str = "", path: str = "") -> dict[str, str]:
    timestamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"event": event, "file": file, "path": path, "timestamp": timestamp}


def setup_live(app: web.Application, directory: Path) -> None:
    """``GET /api/live`` and ``POST /api/live/trigger``; the watcher under ``--reload``."""
    app[LIVE] = live = LiveReload(app[SIO])

    async def close(app: web.Application) -> None:
        live.close()

    app.on_shutdown.append(close)
    app.router.add_get("/api/live", live_stream)
    app.router.add_post("/api/live/trigger", trigger)
    if app[SETTINGS].reload:
        app.cleanup_ctx.append(_watching(directory))


async def live_stream(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    with request.app[LIVE].stream() as queue:
        await _send(response, message("connected"))
        while True:
            try:
                async with asyncio.timeout(KEEPALIVE):
                    data = await queue.get()
            except TimeoutError:
                await response.write(b": keepalive\n\n")
                continue
            if data is None:
                return response
            await _send(response, data)


async def _send(response: web.StreamResponse, data: dict[str, str]) -> None:
    await response.write(f"data: {json.dumps(data)}\n\n".encode())


async def trigger(request: web.Request) -> web.Response:
    """Send a reload by hand; the workers' API key when the server has one, as for emitting."""
    request.app[AUTHORITY].check_api_key(bearer(request))
    event = request.query.get("reload_type", "reload-page")
    if event not in TRIGGERS:
        raise InvalidRequest(f"reload_type must be one of {', '.join(sorted(TRIGGERS))}.")
    file = request.query.get("file", "")
    if len(file) > MAX_FILE_NAME or not file.isprintable() or "/" in file:
        raise InvalidRequest(f"file must be a file name of at most {MAX_FILE_NAME} characters.")
    return web.json_response({"ok": True, "event": await request.app[LIVE].broadcast(event, file)})


def _watching(directory: Path) -> Callable[[web.Application], AsyncIterator[None]]:
    async def watching(app: web.Application) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(_watch(app[LIVE], directory, stop), name="hot reload")
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

    return watching


async def _watch(live: LiveReload, directory: Path, stop: asyncio.Event) -> None:
    """Broadcast the events of each batch of real changes until ``stop``; survives failures."""
    digests = await asyncio.to_thread(Digests, directory)
    while not stop.is_set():
        try:
            async for changes in awatch(
                directory, debounce=DEBOUNCE_MS, recursive=False, stop_event=stop
            ):
                paths = sorted({Path(path) for _, path in changes})
                changed = await asyncio.to_thread(digests.changed, paths)
                for event, file in reload_events(changed):
                    await live.broadcast(event, file)
        except Exception:
            logger.exception("hot reload: watching %s failed; starting again", directory)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(RETRY_DELAY):
                    await stop.wait()
