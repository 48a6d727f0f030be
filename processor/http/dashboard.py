"""The dashboard: one static page with its script and style, served from processor/http/static/."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

STATIC = Path(__file__).with_name("static")
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
_FILES = {"index.html", "app.js", "charts.js", "explore.js", "app.css", "favicon.svg"}


def _file(name: str) -> web.Response:
    path = STATIC / name
    return web.Response(
        body=path.read_bytes(), content_type=_TYPES[path.suffix], charset="utf-8", headers={"Cache-Control": "no-cache"}
    )


async def index(request: web.Request) -> web.Response:
    response = _file("index.html")
    # Everything the page needs comes from here; the API token travels in a header, never in a URL it sends.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


async def static(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in _FILES:
        raise web.HTTPNotFound()
    return _file(name)
