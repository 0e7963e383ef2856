"""``create_app(settings)``: one tidings node, its resources owned by the application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web
from aiohttp.typedefs import Middleware
from tidings.auth import Authority
from tidings.messages import LLMConfig, MessageWriter
from tidings.realtime.connections import close_all
from tidings.realtime.fanout import FanoutManager
from tidings.realtime.manager import RedisManager
from tidings.realtime.namespace import JobNamespace
from tidings.service import JobService
from tidings.settings import Settings
from tidings.store import JobStore, MemoryStore, RedisStore, connect, limits_of
from tidings.web.api import (
    FailureThrottle,
    cors_middleware,
    errors_middleware,
    setup_routes,
)
from tidings.web.keys import AUTHORITY, FANOUT, METRICS, SERVICE, SETTINGS, SIO, THROTTLE
from tidings.web.metrics import CountingPublisher, MeasuredStore, setup_metrics
from tidings.web.page import setup_page
from tidings.web.seed_streams import setup_seed_streams
from tidings.web.sse import setup_sse
from tidings.web.transport import QuietLogger, TidingsServer
from tidings.web.upload import setup_upload

logger = logging.getLogger(__name__)

#: Largest Socket.IO message a client may send; subscribe payloads are tiny.
MAX_CLIENT_MESSAGE = 64 * 1024
#: Largest ordinary request body; uploads stream and have their own limit.
MAX_REQUEST_BODY = 256 * 1024
SWEEP_INTERVAL = 60.0
CLOSE_TIMEOUT = 0.5


def _cors(settings: Settings) -> str | list[str] | None:
    if settings.cors_origins == ["*"]:
        return "*"
    return settings.cors_origins or None  # None: same origin only


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or Settings()
    middlewares: list[Middleware] = [errors_middleware]
    if settings.cors_origins:
        middlewares.insert(0, cors_middleware(settings.cors_origins))
    app = web.Application(
        middlewares=middlewares,
        client_max_size=MAX_REQUEST_BODY,
        # What aiohttp's HTTP parser refuses (every handler error is the middleware's) is logged
        # with a traceback per request: one line per interval instead.
        handler_args={"logger": QuietLogger(logging.getLogger("aiohttp.server"))},
    )
    app[SETTINGS] = settings
    app[THROTTLE] = FailureThrottle(settings.auth_failure_rate, settings.auth_failure_burst)

    secret = settings.secret.get_secret_value() if settings.secret else None
    api_key = settings.api_key.get_secret_value() if settings.api_key else None
    app[AUTHORITY] = Authority(secret, api_key)

    manager = (
        RedisManager(settings.redis_url, probe_interval=settings.probe_interval)
        if settings.redis_url
        else FanoutManager()
    )  # with Redis, rooms are fed by the channels the merge script publishes on
    sio = TidingsServer(
        async_mode="aiohttp",
        client_manager=manager,
        cors_allowed_origins=_cors(settings),
        max_http_buffer_size=MAX_CLIENT_MESSAGE,
        websocket_compression=settings.ws_compression,
        logger=QuietLogger(logging.getLogger("tidings.socketio")),
        engineio_logger=QuietLogger(logging.getLogger("tidings.engineio")),
        throttle=app[THROTTLE],  # wrong tokens at connect spend the HTTP API's budget
    )
    sio.attach(app)
    app[SIO] = sio
    app[FANOUT] = manager
    app.cleanup_ctx.append(_resources)
    app.on_shutdown.append(_disconnect_clients)
    setup_routes(app)
    setup_sse(app)
    setup_seed_streams(app)
    setup_metrics(app)
    setup_upload(app)
    setup_page(app)
    return app


async def _resources(app: web.Application) -> AsyncIterator[None]:
    """Store, messages and service before the server listens; all closed after it stops."""
    settings = app[SETTINGS]
    # connect() may ask Redis whether it is a cluster, blocking: not on the loop.
    redis = await asyncio.to_thread(connect, settings.redis_url) if settings.redis_url else None
    store: JobStore = (
        RedisStore(redis, limits_of(settings)) if redis else MemoryStore(limits_of(settings))
    )
    llm = None
    if settings.groq_api_key is not None:
        llm = LLMConfig(
            api_key=settings.groq_api_key.get_secret_value(),
            base_url=settings.groq_base_url,
            model=settings.llm_model,
        )
    writer = MessageWriter(llm=llm, redis=redis)
    metrics = app[METRICS]  # what the service does is measured where it is wired
    # The embedded store's events go to this node's rooms; the Redis store's script publishes
    # its own, on the channels every node listens on (MeasuredStore counts those).
    publisher = None if redis else CountingPublisher(app[SIO], metrics)
    service = JobService(MeasuredStore(store, metrics), publisher, writer)
    app[SERVICE] = service
    namespace = JobNamespace(service, app[AUTHORITY], settings.socket_rate, settings.socket_burst)
    app[SIO].register_namespace(namespace)
    if isinstance(app[SIO].manager, RedisManager):
        await app[SIO].manager.start()  # before the node takes connections
    if app[AUTHORITY].open:
        logger.warning(
            "OPEN MODE: TIDINGS_SECRET is not set, so anyone may watch any job. "
            "Set TIDINGS_SECRET before exposing this server."
        )
    logger.info("job store: %s", "redis" if redis else "embedded (in memory, one node)")
    sweeper = asyncio.create_task(_sweep(store)) if isinstance(store, MemoryStore) else None
    try:
        yield
    finally:
        if sweeper is not None:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
        await namespace.close()
        if isinstance(app[SIO].manager, RedisManager):
            await app[SIO].manager.aclose()
        await writer.aclose()
        await store.aclose()


async def _sweep(store: MemoryStore) -> None:
    while True:
        await asyncio.sleep(SWEEP_INTERVAL)
        store.sweep()


async def _disconnect_clients(app: web.Application) -> None:
    """Tell every client the node is going, so they reconnect (to another node) at once.

    engine.io's CLOSE packet ends a polling session, but a browser's websocket transport ignores
    it and waits for the websocket itself to close, which python-engineio does only when the
    client hangs up or aiohttp cancels the handler (two shutdown timeouts later). Ending each
    websocket's writer closes the websocket right after the CLOSE packet.
    """
    sockets = list(app[SIO].eio.sockets.values())
    stuck = await close_all(app[SIO].eio, CLOSE_TIMEOUT)
    for socket in sockets:
        if socket.upgraded:
            socket.queue.put_nowait(None)  # the writer sends what is queued, then closes
    if stuck:
        logger.warning("%d connections did not close within %.1f s", stuck, CLOSE_TIMEOUT)
    await app[SIO].shutdown()
