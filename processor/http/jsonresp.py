"""JSON responses with orjson."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    response = web.Response(body=orjson.dumps(data), status=status, content_type="application/json", headers=headers)
    response.headers["Cache-Control"] = "no-store"
    return response


def json_error(status: int, message: str, headers: dict[str, str] | None = None, **extra: Any) -> web.Response:
    return json_response({"error": message, **extra}, status=status, headers=headers)
