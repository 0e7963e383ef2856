"""Prometheus metrics of one node at ``GET /metrics``, in a registry that belongs to its app.

Counts of things that happen (events published, requests, store failures, merge latency) are
recorded where they happen: a middleware for HTTP, and thin wrappers that ``setup_metrics``
puts around the service's store and publisher at startup, so the service itself stays free of
metrics. Counts of things that *are* (sockets, subscriptions, SSE streams) are read at scrape
time from the objects that already know them; so are the counts of refused input (malformed and
binary packets, refused connections and connects, throttled credentials, socket events over their
connection's rate, parsing restarts and overruns), kept as plain numbers by the transport, the
throttle, the namespace and the parse pool, which know nothing of Prometheus.
"""

from __future__ import annotations

from collections.abc import Awaitable, Iterator, Mapping
from functools import partial
from typing import Any, TypeVar

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from tidings.constants import MAX_RECENT_JOBS, NAMESPACE
from tidings.errors import StoreUnavailable
from tidings.models import Snapshot
from tidings.realtime.namespace import JobNamespace
from tidings.service import Publisher, event_name
from tidings.store import Applied, Catchup, JobStore, Limits, Update
from tidings.web.api import Handler
from tidings.web.keys import METRICS, PIPELINES, SIO, STREAMS, THROTTLE
from tidings.web.transport import CONNECT_REFUSALS, TidingsServer

T = TypeVar("T")

#: Methods named as they are; anything else is ``other``, so clients cannot mint label values.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: From the embedded store's microseconds to a struggling Redis's seconds.
_APPLY_BUCKETS = tuple(float(f"{scale}e{power}") for power in range(-4, 1) for scale in (1, 2.5, 5))


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.events_published = Counter(
            "tidings_events_published",
            "Events this node published to their rooms, by event name.",
            ["event"],
            registry=registry,
        )
        self.publish_errors = Counter(
            "tidings_publish_errors",
            "Events stored but not delivered live (subscribers catch up from the history).",
            ["event"],
            registry=registry,
        )
        self.http_requests = Counter(
            "tidings_http_requests",
            "HTTP requests answered, by method, route and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.store_errors = Counter(
            "tidings_store_errors",
            "Store calls that failed because the store did not answer, by operation.",
            ["operation"],
            registry=registry,
        )
        self.apply_seconds = Histogram(
            "tidings_update_apply_seconds",
            "Seconds the store took to merge one update.",
            buckets=_APPLY_BUCKETS,
            registry=registry,
        )
        self.sockets = Gauge(
            "tidings_connected_sockets", "Socket.IO connections on this node.", registry=registry
        )
        self.subscriptions = Gauge(
            "tidings_subscriptions",
            "Jobs subscribed to by this node's sockets (one per socket and job).",
            registry=registry,
        )
        self.sse_streams = Gauge(
            "tidings_sse_streams",
            "Open Server-Sent Events streams on this node, by kind (job, user).",
            ["kind"],
            registry=registry,
        )


class RefusalCounters(Collector):
    """The counts of refused input, read from the parts that keep them when ``/metrics`` is
    scraped (each is zero where its part is missing)."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        sio = self.app.get(SIO)
        server = sio if isinstance(sio, TidingsServer) else None
        engine = server.eio if server is not None else None
        yield _counter(
            "tidings_malformed_packets",
            "Malformed Engine.IO or Socket.IO input (packets, frames, polling payloads), "
            "binary included.",
            engine.malformed if engine is not None else 0,
        )
        yield _counter(
            "tidings_binary_packets_refused",
            "Binary websocket frames, messages and Socket.IO packets refused.",
            engine.binary if engine is not None else 0,
        )
        yield _counter(
            "tidings_connections_refused",
            "Socket.IO connections closed for malformed or binary input.",
            engine.refused if engine is not None else 0,
        )
        yield _labelled(
            "tidings_connects_refused",
            "Socket.IO connects refused, by reason.",
            "reason",
            {r: server.connects_refused[r] if server else 0 for r in CONNECT_REFUSALS},
        )
        throttle = self.app.get(THROTTLE)
        yield _labelled(
            "tidings_auth_throttled",
            "HTTP requests (429) and Socket.IO connects refused because their address presented "
            "too many wrong credentials, by transport.",
            "transport",
            {t: throttle.refused[t] if throttle else 0 for t in ("http", "socketio")},
        )
        namespace = sio.namespace_handlers.get(NAMESPACE) if sio is not None else None
        yield _labelled(
            "tidings_socket_events_rate_limited",
            "Socket.IO events refused rate_limited: their connection sent more than "
            "TIDINGS_SOCKET_RATE and TIDINGS_SOCKET_BURST allow, by event.",
            "event",
            {e: namespace.rate_limited[e] for e in namespace.events}
            if isinstance(namespace, JobNamespace)
            else {},
        )
        runner = self.app.get(PIPELINES)
        pool = runner.parsing.pool if runner is not None else None
        yield _counter(
            "tidings_parse_pool_restarts",
            "Times the upload parsing processes were replaced (an overrun, or a process died).",
            pool.restarts if pool is not None else 0,
        )
        yield _counter(
            "tidings_parse_overruns",
            "Uploaded files whose parsing went past TIDINGS_PIPELINE_TIMEOUT.",
            pool.overruns if pool is not None else 0,
        )


def _counter(name: str, documentation: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def _labelled(
    name: str, documentation: str, label: str, counts: Mapping[str, float]
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for value, count in counts.items():
        family.add_metric([value], count)
    return family


class MeasuredStore:
    """A job store that times every merge and counts the calls its store could not answer."""

    def __init__(self, store: JobStore, metrics: Metrics) -> None:
        self.store = store
        self.metrics = metrics
        self.limits: Limits = store.limits

    async def _counting(self, operation: str, call: Awaitable[T]) -> T:
        try:
            return await call
        except StoreUnavailable:
            self.metrics.store_errors.labels(operation).inc()
            raise

    async def apply(
        self, update: Update, *, epoch: str, now_iso: str, now_ms: int
    ) -> Applied | None:
        with self.metrics.apply_seconds.time():
            applied = await self._counting(
                "apply", self.store.apply(update, epoch=epoch, now_iso=now_iso, now_ms=now_ms)
            )
        if applied is not None and applied.published:  # the store's own publish, not the service's
            self.metrics.events_published.labels(event_name(applied.event)).inc()
        return applied

    async def read(
        self, job_id: str, epoch: str | None = None, since: int | None = None
    ) -> Catchup:
        return await self._counting("read", self.store.read(job_id, epoch, since))

    async def owner_of(self, job_id: str) -> tuple[bool, str | None]:
        return await self._counting("owner_of", self.store.owner_of(job_id))

    async def list_jobs(self, owner: str, limit: int = 200) -> list[Snapshot]:
        return await self._counting("list_jobs", self.store.list_jobs(owner, limit))

    async def recent_jobs(self, limit: int = MAX_RECENT_JOBS) -> list[Snapshot]:
        return await self._counting("recent_jobs", self.store.recent_jobs(limit))

    async def ping(self) -> None:
        await self._counting("ping", self.store.ping())

    async def aclose(self) -> None:
        await self.store.aclose()


class CountingPublisher:
    """A publisher that counts what it delivered, and what it could not, by event name."""

    def __init__(self, publisher: Publisher, metrics: Metrics) -> None:
        self.publisher = publisher
        self.metrics = metrics

    async def emit(self, event: str, data: Any, *, room: list[str], namespace: str) -> None:
        try:
            await self.publisher.emit(event, data, room=room, namespace=namespace)
        except Exception:
            self.metrics.publish_errors.labels(event).inc()
            raise
        self.metrics.events_published.labels(event).inc()


def _route(request: web.Request) -> str:
    """The route's pattern (``/api/jobs/{job_id}``), never the raw path: bounded labels."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost, so it counts the status the client really got."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _count(request, exc.status)
        raise
    except Exception:
        _count(request, 500)
        raise
    _count(request, response.status)
    return response


def _count(request: web.Request, status: int) -> None:
    method = request.method if request.method in _METHODS else "other"
    request.app[METRICS].http_requests.labels(method, _route(request), str(status)).inc()


async def _instrument(app: web.Application) -> None:
    """After the resources exist, read the gauges from them. (The service's store and publisher
    are measured by ``MeasuredStore`` and ``CountingPublisher``, wrapped where the app wires the
    service.)"""
    metrics = app[METRICS]
    namespace = app[SIO].namespace_handlers.get(NAMESPACE)
    if isinstance(namespace, JobNamespace):
        metrics.sockets.set_function(lambda: namespace.connections)
        metrics.subscriptions.set_function(lambda: namespace.subscriptions)
    streams = app.get(STREAMS)
    if streams is not None:
        for kind in ("job", "user"):
            metrics.sse_streams.labels(kind).set_function(partial(streams.open.__getitem__, kind))


async def metrics_view(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def setup_metrics(app: web.Application) -> None:
    app[METRICS] = Metrics()
    app[METRICS].registry.register(RefusalCounters(app))
    app.middlewares.insert(0, count_requests)
    app.on_startup.append(_instrument)
    app.router.add_get("/metrics", metrics_view)
