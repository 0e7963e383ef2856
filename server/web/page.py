"""The live upload page: ``GET /`` and the files it loads from ``/static/``.

The page is static files and nothing else: everything it shows comes from the API, the socket
and the SSE stream, so serving it is a matter of headers. Every response carries a strict
Content-Security-Policy (scripts only from this origin, no inline script or style attribute),
so even a filename that slipped markup past the page's ``textContent`` rendering could not run.
``Cache-Control: no-cache`` makes browsers revalidate (ETag) instead of keeping an old page
beside a newer server. Under ``--reload`` the page also loads ``reload.js``, the development hot
reload of :mod:`tidings.web.reload`; otherwise that file is not served at all.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Final

from aiohttp import web
from tidings.errors import NotFound
from tidings.web.keys import SETTINGS
from tidings.web.reload import setup_live

__all__ = ["CONTENT_SECURITY_POLICY", "STATIC_DIR", "setup_page"]

STATIC_DIR: Final = Path(__file__).resolve().parent / "static"
INDEX: Final = "index.html"
#: The development-only script, served and linked only when ``settings.reload`` is on.
RELOAD_SCRIPT: Final = "reload.js"

CONTENT_SECURITY_POLICY: Final = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
#: The types the page's files are served as; anything else in the directory is not served.
CONTENT_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
HEADERS: Final = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_NAME: Final = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
_HEAD_END: Final = "</head>"
_JOB_ID: Final = re.compile(r"[A-Za-z0-9_.:-]{1,128}")


def setup_page(app: web.Application) -> None:
    """The page's routes and its hot reload (files watched only when the settings ask)."""
    app.router.add_get("/", index)
    app.router.add_get("/jobs/{job_id}", job_page)
    app.router.add_get("/static/{name}", static_file)
    setup_live(app, STATIC_DIR)


async def index(request: web.Request) -> web.Response:
    """The page, read on every request so an edited ``index.html`` shows on the next load."""
    html = await asyncio.to_thread((STATIC_DIR / INDEX).read_text, encoding="utf-8")
    if request.app[SETTINGS].reload:
        tag = f'<script type="module" src="/static/{RELOAD_SCRIPT}"></script>\n'
        html = html.replace(_HEAD_END, tag + _HEAD_END, 1)
    return web.Response(text=html, content_type="text/html", charset="utf-8", headers=HEADERS)


async def job_page(request: web.Request) -> web.Response:
    """``/jobs/<id>``: the page, following that job (app.js reads the id from the address)."""
    if not _JOB_ID.fullmatch(request.match_info["job_id"]):
        raise NotFound("There is no such job page: a job id has 1 to 128 of A-Za-z0-9_.:-.")
    return await index(request)


def _page_file(name: str, reload: bool) -> Path:
    """The file ``name`` of the page directory, or NotFound: no paths, no hidden files, only
    the known types, and ``reload.js`` only under ``--reload``."""
    path = STATIC_DIR / name
    if (
        not _NAME.fullmatch(name)
        or path.suffix not in CONTENT_TYPES
        or (name == RELOAD_SCRIPT and not reload)
        or not path.is_file()
    ):
        raise NotFound(f"There is no file {name} here.")
    return path


async def static_file(request: web.Request) -> web.FileResponse:
    path = _page_file(request.match_info["name"], request.app[SETTINGS].reload)
    return web.FileResponse(path, headers={**HEADERS, "Content-Type": CONTENT_TYPES[path.suffix]})
