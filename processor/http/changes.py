"""GET /api/changes: the store's change feed, as JSON pages or as Server-Sent Events.

    /api/changes?after=POS&limit=N&source=&prefix=&type=&state.FIELD=VALUE
        {"changes": [...], "next": POS, "head": POS, "oldest": POS, "limit": N}; read again with after=next.
    the same with `Accept: text/event-stream`: one `change` event per change (its `id:` the position), an
        `id:`-only line when filtered-out changes moved the position on (a browser's EventSource then resumes
        after them too), a comment every KEEPALIVE seconds, and on reconnection `Last-Event-ID` wins over
        `after`. Wakes on new commits (the store's `wait_for_changes`).

A position older than retention is 410 {"error", "oldest"} (on a stream already open: an `expired` event, then
the end); one beyond the newest is 409 {"error", "head"}. Imports the http context and the stores' feed shapes.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import orjson
from aiohttp import web

from processor.http.api import ApiError, limit_of, state_filters, whole_number
from processor.http.context import context
from processor.http.jsonresp import json_error, json_response
from processor.stores.base import StoreError
from processor.stores.feed import Change, ChangePage, ChangeQuery, FeedAhead, FeedExpired

log = logging.getLogger(__name__)

KEEPALIVE = 15.0  # seconds between comments on an idle stream (proxies and the server's idle timeout)
RETRY_MS = 1000  # what a browser waits before reconnecting a lost stream
_STREAMS = web.AppKey("processor.change_streams", set)
_PARAMS = {"after", "limit", "source", "prefix", "type"}


def install(app: web.Application) -> None:
    """End the open streams when the server shuts down (they would hold it for its whole shutdown timeout)."""
    streams: set[asyncio.Task[object]] = set()
    app[_STREAMS] = streams

    async def end_streams(_app: web.Application) -> None:
        for task in list(streams):
            task.cancel()

    app.on_shutdown.append(end_streams)


def change_query(request: web.Request, streaming: bool) -> ChangeQuery:
    raw = request.query.get("after") or "0"
    if streaming and "Last-Event-ID" in request.headers:
        raw = request.headers["Last-Event-ID"].strip() or "0"
    if not whole_number(raw):
        raise ApiError(400, f"after: expected a position (a whole number >= 0), got {raw[:40]!r}")
    # The filters of /api/objects.
    params = request.query
    state = state_filters(params, _PARAMS, "after, source, prefix, type, state.FIELD or limit")
    return ChangeQuery(
        after=int(raw),
        limit=limit_of(request),
        source=params.get("source") or None,
        prefix=params.get("prefix") or None,
        event_type=params.get("type") or None,
        state_equals=tuple(state),
    )


def _refusal(exc: FeedExpired | FeedAhead) -> web.Response:
    if isinstance(exc, FeedExpired):
        return json_error(410, str(exc), oldest=exc.oldest)
    return json_error(409, str(exc), head=exc.head)


async def changes(request: web.Request) -> web.StreamResponse:
    """GET /api/changes: a page of changes after a position, or (text/event-stream) all of them as they come."""
    streaming = "text/event-stream" in request.headers.get("Accept", "")
    q = change_query(request, streaming)
    store = context(request).store
    try:
        page = await store.changes(q)
    except (FeedExpired, FeedAhead) as exc:
        return _refusal(exc)
    if streaming:
        return await _stream(request, q, page)
    return json_response(
        {
            "changes": [c.to_json() for c in page.changes],
            "next": page.next,
            "head": page.head,
            "oldest": page.oldest,
            "limit": q.limit,
        }
    )


def event(change: Change) -> bytes:
    return b"id: %d\nevent: change\ndata: %s\n\n" % (change.position, orjson.dumps(change.to_json()))


async def _stream(request: web.Request, q: ChangeQuery, page: ChangePage) -> web.StreamResponse:
    ctx = context(request)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    task = asyncio.current_task()
    assert task is not None
    streams = request.app[_STREAMS]
    streams.add(task)
    try:
        await response.write(b"retry: %d\n\n" % RETRY_MS)
        after = q.after
        while True:
            out = b"".join(event(c) for c in page.changes)
            if page.next > (page.changes[-1].position if page.changes else after):
                out += b"id: %d\n\n" % page.next  # filtered-out changes: resume after them too
            if out:
                await response.write(out)
            after = page.next
            if len(page.changes) < q.limit:  # caught up: wait for a commit
                head = await ctx.store.wait_for_changes(after, KEEPALIVE)
                if head <= after:
                    await response.write(b": keepalive\n\n")
                    continue
            try:
                page = await ctx.store.changes(replace(q, after=after))
            except (FeedExpired, FeedAhead) as exc:
                body = {"error": str(exc), "oldest": getattr(exc, "oldest", None), "head": getattr(exc, "head", None)}
                await response.write(b"event: expired\ndata: %s\n\n" % orjson.dumps(body))
                break
    except StoreError as exc:  # the client reconnects with Last-Event-ID; the text names a host or a file
        ctx.store_health.failed(request.path, exc)
        await _try_write(response, b"event: unavailable\ndata: {}\n\n")
    except ConnectionResetError:  # the client went away
        pass
    finally:
        streams.discard(task)
    return response


async def _try_write(response: web.StreamResponse, data: bytes) -> None:
    try:
        await response.write(data)
    except ConnectionResetError:
        pass
