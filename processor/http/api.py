"""The read-only JSON API under /api/. Every list is bounded; object lists page by an opaque cursor."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Collection
from typing import Any

import orjson
from aiohttp import web
from multidict import MultiMapping

from processor.core.model import Row
from processor.http.context import context
from processor.http.jsonresp import json_error, json_response
from processor.stores.base import Query

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
RECENT_MAX = 100
_FIELD = re.compile(r"[A-Za-z0-9_]+")  # used with fullmatch: `$` would let a trailing newline through
_OBJECT_PARAMS = {"source", "prefix", "type", "limit", "next"}


class ApiError(Exception):
    """A request the API refuses, with its status; the middleware turns it into a JSON error."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def limit_of(request: web.Request, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    """?limit=N: a whole number >= 1; above `maximum` it is capped (the response says what was used)."""
    raw = request.query.get("limit")
    if raw is None or raw == "":
        return default
    if not whole_number(raw) or int(raw) < 1:
        raise ApiError(400, f"limit: expected a whole number >= 1, got {raw[:40]!r}")
    return min(int(raw), maximum)


def whole_number(raw: str) -> bool:
    """ASCII digits only (str.isdigit also takes '²', which int() refuses) and short enough for a 64-bit id."""
    return raw.isascii() and raw.isdigit() and len(raw) <= 18


def encode_cursor(row: Row) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([row.source, row.object])).rstrip(b"=").decode()


def decode_cursor(text: str) -> tuple[str, str]:
    try:
        value = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        value = None
    if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
        raise ApiError(400, "next: not a cursor this API handed out")
    return value[0], value[1]


def state_filters(params: MultiMapping[str], known: Collection[str], expected: str) -> list[tuple[str, str]]:
    """A query's `state.FIELD=VALUE` filters; any other parameter must be `known` (else 400 naming `expected`)."""
    state: list[tuple[str, str]] = []
    for name in params:
        if name.startswith("state."):
            field = name[len("state.") :]
            if not _FIELD.fullmatch(field):
                raise ApiError(400, f"{name}: a state filter names one top-level field (letters, digits, _)")
            state.extend((field, value) for value in params.getall(name))
        elif name not in known:
            raise ApiError(400, f"unknown parameter {name!r}: expected {expected}")
    return state


def object_query(request: web.Request) -> Query:
    params = request.query
    state = state_filters(params, _OBJECT_PARAMS, "source, prefix, type, state.FIELD, limit or next")
    cursor = params.get("next")
    return Query(
        source=params.get("source") or None,
        prefix=params.get("prefix") or None,
        event_type=params.get("type") or None,
        state_equals=tuple(state),
        after=decode_cursor(cursor) if cursor else None,
        limit=limit_of(request),
    )


async def objects(request: web.Request) -> web.Response:
    """GET /api/objects: rows sorted by (source, object); `next` fetches the following page."""
    q = object_query(request)
    # One row more than asked tells whether a next page exists, so the last page has next = null.
    rows = await context(request).store.query(
        Query(q.source, q.prefix, q.event_type, q.state_equals, q.after, q.limit + 1)
    )
    page, more = rows[: q.limit], len(rows) > q.limit
    return json_response(
        {"objects": [r.to_json() for r in page], "limit": q.limit, "next": encode_cursor(page[-1]) if more else None}
    )


async def one_object(request: web.Request) -> web.Response:
    """GET /api/objects/{object}: the object's row; `?source=` picks one when several sources have it."""
    name = request.match_info["object"]
    extra = set(request.query) - {"source"}
    if extra:
        raise ApiError(400, f"unknown parameter {sorted(extra)[0]!r}: expected source")
    source = request.query.get("source") or None
    rows = await context(request).store.query(Query(source=source, object=name, limit=MAX_LIMIT))
    if not rows:
        where = f" from source {source!r}" if source else ""
        return json_error(404, f"no object {name!r}{where}", object=name)
    if len(rows) > 1:
        return json_error(
            409,
            f"{len(rows)} sources have an object {name!r}: add ?source=",
            object=name,
            sources=[r.source for r in rows],
        )
    return json_response(rows[0].to_json())


async def recent(request: web.Request) -> web.Response:
    """GET /api/recent: the most recently updated objects, newest first."""
    limit = limit_of(request, default=20, maximum=RECENT_MAX)
    rows = await context(request).store.recent(limit)
    return json_response({"objects": [r.to_json() for r in rows], "limit": limit})


async def dead_letters(request: web.Request) -> web.Response:
    """GET /api/deadletters: oldest first, `after` = the last id seen (the response's `next`); or with
    `order=newest`, the newest `limit` ones, newest first (what a person looks at)."""
    order = request.query.get("order", "oldest")
    if order not in ("oldest", "newest"):
        raise ApiError(400, f"order: expected oldest or newest, got {order[:40]!r}")
    if order == "newest":
        if "after" in request.query:
            raise ApiError(400, "after: pages oldest first only; leave it out with order=newest")
        limit = limit_of(request)
        letters = await context(request).store.dead_letters(limit=limit, newest_first=True)
        return json_response({"dead_letters": letters, "limit": limit, "next": None})
    raw = request.query.get("after") or "0"
    if not whole_number(raw):
        raise ApiError(400, f"after: expected a dead letter id (a whole number >= 0), got {raw[:40]!r}")
    limit = limit_of(request)
    letters = await context(request).store.dead_letters(limit=limit + 1, after_id=int(raw))
    page = letters[:limit]
    return json_response(
        {"dead_letters": page, "limit": limit, "next": page[-1]["id"] if len(letters) > limit else None}
    )


async def partitions(request: web.Request) -> web.Response:
    """GET /api/partitions: every partition with owner, checkpoint, last enqueued and lag (cached briefly)."""
    return json_response(await context(request).partitions.get())


async def summary(request: web.Request) -> web.Response:
    """GET /api/summary: outcome counters, stored counts, reorder buffer, store commits, readiness inputs."""
    ctx = context(request)
    body: dict[str, Any] = {"store": {"url_scheme": ctx.store.url.split(":", 1)[0]}}
    try:
        counts = await ctx.counts.get()
        body.update(objects=counts["objects"], dead_letters=counts["dead_letters"])
        body["store"]["up"] = True
    except Exception as exc:  # the page still shows the worker's own figures when the store is down
        ctx.store_health.failed(request.path, exc)  # its text can name a file or a database: logged only
        body.update(objects=None, dead_letters=None)
        body["store"]["up"] = False
    worker = ctx.worker
    if worker is None:
        body["worker"] = None
        return json_response(body)
    by_type: dict[str, dict[str, int]] = {}
    for (outcome, event_type), n in sorted(worker.tally.by_outcome_type.items()):
        by_type.setdefault(event_type, {})[outcome] = n
    commits = worker.commits
    body["worker"] = {
        "running": worker.running,
        "store_healthy": worker.store_healthy,
        **worker.ids,
        "events": worker.tally.summary(),
        "events_by_type": by_type,
        "buffer": {"events": len(worker.buffer), "bytes": worker.buffer.bytes, "objects": worker.buffer.objects},
        "commits": {"count": commits.count, "seconds": round(commits.seconds, 6)},
        "partitions_owned": sorted(worker.partitions, key=lambda p: (len(p), p)),
    }
    return json_response(body)


async def history(request: web.Request) -> web.Response:
    """GET /api/history: the worker's sampled last hour (no worker here, as under `serve`: no points)."""
    worker = context(request).worker
    if worker is None:
        return json_response({"interval": None, "span": None, "points": []})
    return json_response(worker.history.series())
