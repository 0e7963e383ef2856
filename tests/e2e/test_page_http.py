"""How the page is served: headers, types, what is refused, and the hot reload's events.

The browser tests show the page works; these pin what a browser is told (the CSP that would stop
injected script, no stale caches, correct types) and that ``reload.js`` exists only under
``--reload``.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDictProxy
from tidings import Settings
from tidings.web.page import CONTENT_SECURITY_POLICY, STATIC_DIR
from tidings.web.reload import reload_events

from tests.support import running_app

PAGE_FILES = {
    "app.js": "text/javascript",
    "app.css": "text/css",
    "tidings-client.js": "text/javascript",
    "favicon.svg": "image/svg+xml",
}


async def fetch(url: str) -> tuple[int, CIMultiDictProxy[str], str]:
    """Status, headers (case-insensitive, as HTTP has them) and body."""
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, response.headers, await response.text()


class _Markup(HTMLParser):
    """Scripts, inline code and inline handlers of a page: what the CSP would block."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, Any]] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "script":
            self.scripts.append(named)
            self._in_script = True
        self.inline += [f"{tag} {name}" for name in named if name.startswith("on")]
        if "style" in named:
            self.inline.append(f"{tag} style")
        if tag == "style":
            self.inline.append("style element")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append("inline script")


def markup(html: str) -> _Markup:
    parser = _Markup()
    parser.feed(html)
    return parser


async def test_the_page_and_its_headers() -> None:
    async with running_app(Settings()) as (url, _):
        status, headers, html = await fetch(f"{url}/")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert headers["Cache-Control"] == "no-cache"
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in CONTENT_SECURITY_POLICY
    assert "unsafe-inline" not in CONTENT_SECURITY_POLICY
    assert headers["X-Content-Type-Options"] == "nosniff"
    page = markup(html)
    assert page.inline == [], "the CSP would block these"
    assert [script["src"] for script in page.scripts] == ["/static/app.js"]


@pytest.mark.parametrize(("name", "content_type"), PAGE_FILES.items())
async def test_page_files_are_served_with_their_types(name: str, content_type: str) -> None:
    async with running_app(Settings()) as (url, _):
        status, headers, body = await fetch(f"{url}/static/{name}")
    assert status == 200
    assert headers["Content-Type"].split(";")[0] == content_type
    assert headers["Cache-Control"] == "no-cache"
    assert headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "ETag" in headers
    assert body == (STATIC_DIR / name).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "path",
    [
        "/static/reload.js",  # only under --reload
        "/static/missing.js",
        "/static/%2e%2e%2fpage.py",
        "/static/..%2fpage.py",
        "/static/.hidden.js",
        "/static/index.html.bak",
    ],
)
async def test_what_is_not_served(path: str) -> None:
    async with running_app(Settings()) as (url, _):
        status, headers, body = await fetch(f"{url}{path}")
    assert status == 404
    assert headers["Content-Type"].startswith("application/json")
    assert '"not_found"' in body


async def test_reload_script_only_under_reload() -> None:
    tag = '<script type="module" src="/static/reload.js"></script>'
    async with running_app(Settings(reload=True)) as (url, _):
        _, _, html = await fetch(f"{url}/")
        status, headers, script = await fetch(f"{url}/static/reload.js")
    assert tag in html and html.index(tag) < html.index("</head>")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    assert "reload-css" in script
    async with running_app(Settings()) as (url, _):
        _, _, plain = await fetch(f"{url}/")
    assert tag not in plain  # the control arm


def test_serve_takes_reload() -> None:
    from tidings.cli.main import build_parser

    assert build_parser().parse_args(["serve", "--reload"]).reload is True
    assert build_parser().parse_args(["serve"]).reload is False


def test_every_page_file_is_one_the_server_serves() -> None:
    """A file added to the page's directory with a type page.py does not know would 404."""
    from tidings.web.page import CONTENT_TYPES

    names = [path.name for path in STATIC_DIR.iterdir() if not path.name.startswith("e2e-probe-")]
    assert all(Path(name).suffix in CONTENT_TYPES for name in names), names
    assert all(re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*", name) for name in names), names


@pytest.mark.parametrize(
    ("changed", "events"),
    [
        (["app.css"], [("reload-css", "app.css")]),
        (["b.css", "a.css"], [("reload-css", "a.css"), ("reload-css", "b.css")]),
        (["app.css", "app.js"], [("reload-js", "app.js")]),
        (["app.js", "index.html"], [("reload-html", "index.html")]),
        (["notes.txt", ".app.css.swp", ".hidden.css"], []),
    ],
)
def test_reload_events(changed: list[str], events: list[tuple[str, str]]) -> None:
    assert reload_events(STATIC_DIR / name for name in changed) == events
