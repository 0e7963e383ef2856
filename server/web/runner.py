"""``JsonErrorRunner``: aiohttp's app runner, answering what its HTTP parser refuses in JSON.

aiohttp reads a request's line and headers before any application code runs. A bad request
line, a header line over 8190 bytes or a byte no header may hold is answered by
``RequestHandler.handle_error`` with a plain-text 400 ("Bad status line ...") that no middleware
and no ``on_response_prepare`` sees; aiohttp (3.14) has no supported hook for it (its issues
3287 and 6463). Every other error of a node is ``{"error": {"code", "message"}}``, so these are
too: the connections' handler is aiohttp's own with ``handle_error`` overridden, which still
logs (through the node's quiet logger), still refuses once a reply has begun and still closes
the connection; only the reply is JSON.

This reaches into aiohttp at two points: ``AppRunner._make_server``, where the runner gets its
``web.Server``, and the class of that server and of the handlers it makes (narrowed to
subclasses that add no state). ``tests/server/test_parser_errors.py`` sends the refused requests
to a real node, so it fails loudly when aiohttp moves either.
"""

from __future__ import annotations

from http import HTTPStatus

from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from tidings.web.api import http_error

__all__ = ["JsonErrorRunner"]


def _sentence(status: int, exc: BaseException | None) -> str:
    """What went wrong, without echoing the client's bytes (the parser's message quotes them)."""
    if isinstance(exc, LineTooLong):
        return "The request line or a header is too long."
    if status == HTTPStatus.BAD_REQUEST:
        return "The request line or headers are malformed."
    if status == HTTPStatus.INTERNAL_SERVER_ERROR:
        return "Something went wrong on the server."
    try:
        return HTTPStatus(status).phrase + "."
    except ValueError:
        return "The request failed."


class _JsonErrorHandler(RequestHandler):
    """aiohttp's per-connection handler, its error replies in JSON."""

    __slots__ = ()  # no state of its own: a handler aiohttp made can take this class

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs; raises if a reply began
        reply = http_error(status, _sentence(status, exc))
        reply.force_close()  # what follows a refused request on this connection is not trusted
        return reply


class _JsonErrorServer(web.Server):
    """aiohttp's low-level server, handing each connection a ``_JsonErrorHandler``."""

    def __call__(self) -> RequestHandler:
        handler = super().__call__()
        handler.__class__ = _JsonErrorHandler
        return handler


class JsonErrorRunner(web.AppRunner):
    """``web.AppRunner`` whose server answers the requests aiohttp's parser refuses in JSON."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _JsonErrorServer
        return server
