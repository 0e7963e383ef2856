"""The HTTP API of PROTOCOL.md: thin handlers over the service, errors as codes and sentences."""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Middleware
from aiohttp.web_protocol import RequestPayloadError
from tidings.auth import Principal
from tidings.errors import (
    Forbidden,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    StoreUnavailable,
    TidingsError,
    Unauthorized,
)
from tidings.models import CreateJobRequest, JobRequest, ProgressRequest, SubscribeRequest, parse
from tidings.realtime.manager import RedisManager
from tidings.service import JobService
from tidings.web.keys import AUTHORITY, SERVICE, SIO, THROTTLE
from tidings.wire import listed

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_HTTP_CODES = {
    400: "invalid_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    500: "internal",
}


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def error_response(exc: TidingsError, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": exc.to_dict()}, status=exc.http_status, headers=headers)


def http_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """An error that aiohttp raised rather than tidings, in the same shape as tidings' own."""
    code = _HTTP_CODES.get(status, "http_error")
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status, headers=headers
    )


class FailureThrottle:
    """Wrong credentials per client address: a token bucket each, so guessing keys is slow.

    Only failures take from a bucket, and only requests that present credentials are refused
    when it is empty: a worker with the right key, or a reader without a token, never waits.
    The least recently seen addresses are forgotten past ``max_clients``.
    """

    def __init__(self, rate: float, burst: int, max_clients: int = 10_000) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.max_clients = max_clients
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        #: Refusals while a bucket was empty, by transport (``http``, ``socketio``).
        self.refused: Counter[str] = Counter()

    def _tokens(self, address: str, now: float) -> float:
        tokens, stamp = self._buckets.get(address, (self.burst, now))
        return min(self.burst, tokens + (now - stamp) * self.rate)

    def retry_after(self, address: str) -> int:
        """Whole seconds until ``address`` may try again, rounded up so that a client waiting
        them is let in; 0 when it may now."""
        tokens = self._tokens(address, time.monotonic())
        return 0 if tokens >= 1 else max(1, math.ceil((1 - tokens) / self.rate))

    def failed(self, address: str) -> None:
        now = time.monotonic()
        self._buckets[address] = (max(0.0, self._tokens(address, now) - 1), now)
        self._buckets.move_to_end(address)
        while len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)


def _presents_credentials(request: web.Request) -> bool:
    return "Authorization" in request.headers or "token" in request.query


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure leaves as ``{"error": {"code", "message"}}``, never as a traceback."""
    throttle = request.app.get(THROTTLE)
    address = request.remote or ""
    if throttle is not None and _presents_credentials(request):
        wait = throttle.retry_after(address)
        if wait > 0:
            throttle.refused["http"] += 1
            refusal = RateLimited("Too many wrong credentials from this address; wait and retry.")
            return error_response(refusal, {"Retry-After": str(wait)})
    try:
        return await handler(request)
    except Unauthorized as exc:
        if throttle is not None and _presents_credentials(request):
            throttle.failed(address)
        return error_response(exc)
    except TidingsError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return http_error(exc.status, exc.reason + ".", _allow(exc))
    except (HttpProcessingError, RequestPayloadError) as exc:  # aiohttp's parsers refused a body
        logger.info("%s %s: malformed body: %s", request.method, request.path, exc)
        body = {"error": {"code": "invalid_request", "message": "The request body is malformed."}}
        return web.json_response(body, status=400)
    except Exception:
        logger.exception("%s %s failed", request.method, request.path)
        body = {"error": {"code": "internal", "message": "Something went wrong on the server."}}
        return web.json_response(body, status=500)


def cors_middleware(origins: list[str]) -> Middleware:
    """CORS for the HTTP API and the SSE streams (Socket.IO answers its own), for listed origins.

    Same-origin pages need none of this; ``TIDINGS_CORS_ORIGINS`` widens it, ``*`` only when asked.
    """
    allowed = set(origins)

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if (
            origin is None
            or request.path.startswith("/socket.io/")
            or not ("*" in allowed or origin in allowed)
        ):
            return await handler(request)
        preflight = request.method == "OPTIONS" and (
            "Access-Control-Request-Method" in request.headers
        )
        response = web.Response(status=204) if preflight else await handler(request)
        response.headers.update(
            {
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Headers": "Authorization, Content-Type, Last-Event-ID",
                "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Max-Age": "600",
                # A page on another origin may read how long a 429 asks it to wait.
                "Access-Control-Expose-Headers": "Retry-After",
                "Vary": "Origin",
            }
        )
        return response

    return cors


def _allow(exc: web.HTTPException) -> dict[str, str]:
    allow = exc.headers.get("Allow")
    return {"Allow": allow} if allow else {}


def bearer(request: web.Request, *, query: bool = False) -> str | None:
    """The token of ``Authorization: Bearer``; with ``query``, for EventSource, of ``?token=``.

    Only the streams take ``?token=``: elsewhere a token (or the API key) would end up in URLs
    and access logs.
    """
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return (request.query.get("token") or None) if query else None


#: On an open server, the cookie that names a browser which uploaded without a user id, so that
#: its uploads are listed to it (and to nobody else) by ``GET /api/jobs``.
BROWSER_COOKIE: Final = "tidings_browser"


def principal_of(request: web.Request, *, query: bool = False) -> Principal:
    """The caller; on an open server its ``?user_id=``, else the browser cookie's identity."""
    user_id = request.query.get("user_id") or request.cookies.get(BROWSER_COOKIE)
    return request.app[AUTHORITY].principal(bearer(request, query=query), user_id)


def may_create(caller: Principal) -> None:
    """A job-scoped token watches its jobs and nothing else: it creates none (they would have
    no owner, so nobody could ever see them)."""
    if not caller.open and caller.user is None:
        raise Forbidden("This token is for watching particular jobs; it cannot create jobs.")


def job_id_of(request: web.Request) -> str:
    return parse(JobRequest, {"job_id": request.match_info["job_id"]}).job_id


async def readable_job(request: web.Request, *, query: bool = False) -> tuple[JobService, str]:
    """The service and the job id, once the caller may see the job (404 alike when not)."""
    service = request.app[SERVICE]
    job_id = job_id_of(request)
    await service.authorize(principal_of(request, query=query), job_id)
    return service, job_id


def resume_point(job_id: str, epoch: str | None, since: str | None) -> SubscribeRequest:
    """A catch-up point given as text (query string, ``Last-Event-ID``), validated as
    ``subscribe`` validates it."""
    if since is not None and not (since.isascii() and since.isdigit() and len(since) <= 16):
        raise InvalidRequest("since must be a whole number from 0 to 2**53.")
    since_number = int(since) if since is not None else None
    return parse(SubscribeRequest, {"job_id": job_id, "epoch": epoch, "since": since_number})


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN and Infinity would break every reader


async def json_body(request: web.Request) -> Any:
    if not request.can_read_body:
        return {}
    try:
        body = await request.read()
        value = json.loads(body, parse_constant=_no_constant)
        if _SURROGATE_ESCAPE.search(body):
            # json accepts a lone "\ud800", which no UTF-8 writer (Redis, SSE) can store.
            json.dumps(value, ensure_ascii=False).encode()
    except web.HTTPRequestEntityTooLarge as exc:
        raise PayloadTooLarge("The request body is too large.") from exc
    except (UnicodeError, ValueError) as exc:
        raise InvalidRequest("The request body is not valid JSON.") from exc
    except RecursionError as exc:
        raise InvalidRequest("The request body is nested too deeply.") from exc
    return value


async def create_job(request: web.Request) -> web.Response:
    authority = request.app[AUTHORITY]
    body = parse(CreateJobRequest, await json_body(request))
    token = bearer(request)
    caller: Principal | None = None
    if authority.open or authority.is_api_key(token):
        owner = body.owner
    else:
        caller = authority.principal(token)
        may_create(caller)
        if body.owner not in (None, caller.user):
            raise Forbidden("A user may create jobs only for themself.")
        if body.job_id is not None:
            # A chosen id could take over a job a worker is about to report, or probe for one.
            raise Forbidden("Only workers, with the API key, choose job ids; leave job_id out.")
        owner = caller.user
    job = await request.app[SERVICE].create(body, owner)
    reply: dict[str, Any] = {"job": job}
    if not authority.open:
        reply["token"] = authority.mint_job_token(owner, [job["job_id"]], caller)
    return web.json_response(reply, status=201)


async def list_jobs(request: web.Request) -> web.Response:
    caller = principal_of(request)
    return web.json_response({"jobs": await request.app[SERVICE].list_jobs(caller.user)})


async def recent_jobs(request: web.Request) -> web.Response:
    jobs = await request.app[SERVICE].recent_jobs(open_server=request.app[AUTHORITY].open)
    return web.json_response({"jobs": jobs})


async def get_job(request: web.Request) -> web.Response:
    service, job_id = await readable_job(request)
    return web.json_response(listed(await service.snapshot(job_id)))


async def get_events(request: web.Request) -> web.Response:
    service, job_id = await readable_job(request)
    point = resume_point(job_id, request.query.get("epoch"), request.query.get("since"))
    catchup = await service.read(job_id, point.epoch, point.since)
    if catchup.job is None:
        raise NotFound(f"There is no job {job_id}.")
    return web.json_response({"events": catchup.events, "recovered": catchup.recovered})


async def post_progress(request: web.Request) -> web.Response:
    request.app[AUTHORITY].check_api_key(bearer(request))
    job_id = job_id_of(request)
    body = parse(ProgressRequest, await json_body(request))
    event = await request.app[SERVICE].report(job_id, body)
    return web.json_response({"event": event}, status=202)


async def cancel_job(request: web.Request) -> web.Response:
    service, job_id = await readable_job(request)
    return web.json_response(await service.cancel(job_id))


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def readyz(request: web.Request) -> web.Response:
    """Ready when the store answers and, with many nodes, the Redis subscription hears."""
    try:
        await request.app[SERVICE].store.ping()
        manager = request.app[SIO].manager
        if isinstance(manager, RedisManager) and not manager.listening:
            raise StoreUnavailable(
                "This node is not hearing the other nodes through Redis; it is subscribing again."
            )
    except TidingsError as exc:
        return web.json_response({"ok": False, "error": exc.to_dict()}, status=503)
    return web.json_response({"ok": True})


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/api/jobs", create_job)
    app.router.add_get("/api/jobs", list_jobs)
    app.router.add_get("/api/jobs/recent", recent_jobs)  # before {job_id}, which it shadows
    app.router.add_get("/api/jobs/{job_id}", get_job)
    app.router.add_get("/api/jobs/{job_id}/events", get_events)
    app.router.add_post("/api/jobs/{job_id}/progress", post_progress)
    app.router.add_post("/api/jobs/{job_id}/cancel", cancel_job)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
