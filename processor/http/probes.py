"""Liveness and readiness. Neither needs the API token: orchestrators call them."""

from __future__ import annotations

import asyncio

from aiohttp import web

from processor.http.context import context
from processor.http.jsonresp import json_response
from processor.stores.base import ProjectionStore

STORE_TIMEOUT = 2.0


async def healthz(request: web.Request) -> web.Response:
    """The event loop answers: nothing else is checked, so a slow store never gets the pod restarted."""
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    reason = await not_ready_reason(request)
    if reason is not None:
        return json_response({"ready": False, "reason": reason}, status=503)
    return json_response({"ready": True})


async def store_answers(store: ProjectionStore) -> None:
    """The API's own cheap queries, on both tables: `SELECT 1` answers even when a table is missing."""
    await store.recent(1)
    await store.dead_letters(limit=1, newest_first=True)


async def not_ready_reason(request: web.Request) -> str | None:
    ctx = context(request)
    try:
        await asyncio.wait_for(store_answers(ctx.store), STORE_TIMEOUT)
    except TimeoutError:
        return f"store: no answer within {STORE_TIMEOUT:.0f}s"
    except Exception as exc:  # any failure to answer means not ready; the detail (a path, a DSN) is logged only
        ctx.store_health.failed("readiness", exc)
        return "store: unavailable"
    ctx.store_health.answered()
    worker = ctx.worker
    if worker is None:
        return None
    if not worker.running:
        return "worker: the apply loop is not running"
    if not worker.store_healthy:
        return "worker: store commits are failing (retrying)"
    if worker.consumer_alive is False:
        return "worker: the Event Hubs consumer is not running"
    return None
