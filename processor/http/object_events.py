"""GET /api/objects/{object}/events: the object's history, which events made its state (when it is kept).

    {"object", "source", "events": [{"event_id", "event_type", "time", "sequencer", "outcome", "partition",
     "sequence_number", "recorded_at"}, ...newest first], "limit", "enabled"}

`?source=` when several sources have the object (else 409), `?limit=` (100, at most 1000). An object whose own
name ends in /events is answered as /api/objects/{object} answers it: the route comes first and would otherwise
hide it. `enabled` says whether this process's settings keep history (PROCESSOR_HISTORY_PER_OBJECT); the events
are whatever the writers kept. Imports the http context and api's helpers, and the stores' Query.
"""

from __future__ import annotations

from aiohttp import web

from processor.http.api import MAX_LIMIT, ApiError, limit_of
from processor.http.context import context
from processor.http.jsonresp import json_error, json_response
from processor.stores.base import Query


async def events(request: web.Request) -> web.Response:
    name = request.match_info["object"]
    extra = set(request.query) - {"source", "limit"}
    if extra:
        raise ApiError(400, f"unknown parameter {sorted(extra)[0]!r}: expected source or limit")
    ctx = context(request)
    source = request.query.get("source") or None
    itself = await ctx.store.query(Query(source=source, object=name + "/events", limit=MAX_LIMIT))
    if itself:  # an object named .../events: the object, as /api/objects/{object} gives it
        if len(itself) > 1:
            return _ambiguous(name + "/events", itself)
        return json_response(itself[0].to_json())
    rows = await ctx.store.query(Query(source=source, object=name, limit=MAX_LIMIT))
    if not rows:
        where = f" from source {source!r}" if source else ""
        return json_error(404, f"no object {name!r}{where}", object=name)
    if len(rows) > 1:
        return _ambiguous(name, rows)
    limit = limit_of(request)
    kept = await ctx.store.object_history(rows[0].source, name, limit)
    return json_response(
        {
            "object": name,
            "source": rows[0].source,
            "events": [e.to_json() for e in kept],
            "limit": limit,
            "enabled": ctx.settings.history_per_object > 0,
        }
    )


def _ambiguous(name: str, rows: list) -> web.Response:
    return json_error(
        409, f"{len(rows)} sources have an object {name!r}: add ?source=", object=name, sources=[r.source for r in rows]
    )
