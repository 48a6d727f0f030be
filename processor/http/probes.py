"""Liveness and readiness. Neither needs the API token: orchestrators call them."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from processor.http.consumer import consumer_alive
from processor.http.context import context
from processor.http.jsonresp import json_response

PING_TIMEOUT = 2.0

log = logging.getLogger(__name__)


async def healthz(request: web.Request) -> web.Response:
    """The event loop answers: nothing else is checked, so a slow store never gets the pod restarted."""
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    reason = await not_ready_reason(request)
    if reason is not None:
        return json_response({"ready": False, "reason": reason}, status=503)
    return json_response({"ready": True})


async def not_ready_reason(request: web.Request) -> str | None:
    ctx = context(request)
    try:
        await asyncio.wait_for(ctx.store.ping(), PING_TIMEOUT)
    except asyncio.TimeoutError:
        return f"store: no answer to ping within {PING_TIMEOUT:.0f}s"
    except Exception as exc:  # any failure to answer means not ready; the detail (a path, a DSN) is logged only
        log.debug("readiness: store ping failed: %r", exc)
        return "store: unavailable"
    worker = ctx.worker
    if worker is None:
        return None
    if not worker.running:
        return "worker: the apply loop is not running"
    if not worker.store_healthy:
        return "worker: store commits are failing (retrying)"
    if consumer_alive(worker) is False:
        return "worker: the Event Hubs consumer is not running"
    return None
