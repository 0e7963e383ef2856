"""``tidings serve``: one node on uvloop, until SIGINT or SIGTERM; then a shutdown that ends
within a bound, whatever the node's clients and its Redis do (see ``shut_down``)."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import sysconfig
from pathlib import Path
from typing import Any

from aiohttp import web
from tidings.errors import TidingsError
from tidings.settings import Settings
from tidings.web.app import create_app
from tidings.web.page import STATIC_DIR
from tidings.web.runner import JsonErrorRunner

logger = logging.getLogger("tidings")

#: Bound on the shutdown (0.2 to 0.3 s when every part answers): past it the node names, in
#: its log, what had not finished, and exits anyway.
SHUTDOWN_TIMEOUT = 5.0
#: Bound on the tasks still running after the shutdown, once cancelled.
LEFTOVER_TIMEOUT = 1.0
#: asyncio's own frames, left out where the log names what a task waits in.
_ASYNCIO = Path(asyncio.__file__).parent


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
            stuck = runner.run(_run(create_app(settings), settings.host, settings.port))
            if stuck:  # named in the log; asyncio.Runner would wait for them without end
                logging.shutdown()
                os._exit(1)
    except KeyboardInterrupt:  # SIGINT before the node listens
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


async def _run(app: web.Application, host: str, port: int) -> list[str]:
    """Serve until SIGINT or SIGTERM; then ``shut_down``."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    return await run_until(app, host, port, stop)


async def run_until(app: web.Application, host: str, port: int, stop: asyncio.Event) -> list[str]:
    """``web.run_app``'s loop (and keep-alive) with ``JsonErrorRunner``, until ``stop`` is set;
    then ``shut_down``: what would not end (empty when the node stopped cleanly)."""
    # requests still running 0.5 s into the shutdown are cancelled: clients learn at once.
    runner = JsonErrorRunner(app, handle_signals=False, shutdown_timeout=0.5, keepalive_timeout=75)
    others = asyncio.all_tasks()  # not the node's: not for its shutdown to cancel
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        logger.info("listening on %s", site.name)
        await stop.wait()
    finally:
        stuck = await shut_down(runner, others)
    return stuck


async def shut_down(runner: web.BaseRunner, others: set[asyncio.Task[Any]]) -> list[str]:
    """aiohttp's shutdown with every task of the node still running, bounded; then the tasks
    left (all but ``others``), cancelled, bounded too. Where the tasks that would not end were
    waiting.

    The signal is not raised through the loop (aiohttp's ``handle_signals``): ``asyncio.Runner``
    would then cancel every task at once, handlers and engine.io's service task included, before
    the app's shutdown hooks ran, and wait without end for any task that survives one
    cancellation (engine.io's cancelled service task aborted ``on_shutdown``, so that no
    connection was shut down and no resource closed).
    """
    cleanup = asyncio.create_task(runner.cleanup(), name="shutdown")
    done, _ = await asyncio.wait([cleanup], timeout=SHUTDOWN_TIMEOUT)
    if not done:
        logger.error(
            "the shutdown did not finish within %.0f s, waiting in %s",
            SHUTDOWN_TIMEOUT,
            waiting_in(cleanup),
        )
    elif cleanup.cancelled() or cleanup.exception() is not None:
        logger.error(
            "the shutdown failed: %r", "cancelled" if cleanup.cancelled() else cleanup.exception()
        )
    current = asyncio.current_task()
    left = [task for task in asyncio.all_tasks() - others if task is not current]
    for task in left:
        task.cancel()
    pending: set[asyncio.Task[Any]] = set()
    if left:
        _, pending = await asyncio.wait(left, timeout=LEFTOVER_TIMEOUT)
    stuck = sorted(waiting_in(task) for task in pending)
    if stuck:
        logger.error("%d tasks would not end, exiting anyway: %s", len(stuck), "; ".join(stuck))
    elif done:
        logger.info("stopped")
    return stuck


def waiting_in(task: asyncio.Task[Any]) -> str:
    """The innermost coroutine a task waits in, asyncio's own left out, as ``function
    (file:line)``: what py-spy does not show of a loop that idles."""
    where = task.get_name()
    awaited: Any = task.get_coro()
    while awaited is not None:
        frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "ag_frame", None)
        if frame is None:
            break
        code = frame.f_code
        if not Path(code.co_filename).is_relative_to(_ASYNCIO):
            where = f"{code.co_qualname} ({Path(code.co_filename).name}:{frame.f_lineno})"
        awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "ag_await", None)
    return where


def _installed(path: Path) -> bool:
    """True when the page's files are the copy in site-packages rather than a checkout."""
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    return path.resolve().is_relative_to(site)
