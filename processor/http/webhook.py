"""The webhook: the change feed pushed to a URL, in commit order, each request signed, retried until the
receiver acknowledges it (a 2xx), and resumed after the last acknowledged position when the server restarts.

    POST {settings.webhook_url}
    Content-Type: application/json          {"changes": [change, ...]}  (up to webhook_batch, consecutive in the feed)
    X-Processor-Signature: t=UNIX_TIME,v1=HEX   HMAC-SHA256 with the secret over b"UNIX_TIME." + body
    X-Processor-Positions: FIRST-LAST       the positions it carries: a receiver dedupes by position

At least once: a request the receiver took but whose answer was lost comes again, so a receiver keeps the
last position it applied. The acknowledged position is stored in the projection store (`save_feed_cursor`),
under a name derived from the URL (a new URL starts afresh, at the feed's head). Runs beside the HTTP server
(`install`), so in `processor run` and `processor serve`; with several replicas each pushes, so set the webhook
on one. A position pruned by retention before it was delivered stops the webhook with an ERROR (never a gap).

Imports aiohttp, the settings and the stores' feed shapes.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import TypeVar

import aiohttp
import orjson
from aiohttp import web

from processor.config import Settings
from processor.stores.base import ProjectionStore, StoreError
from processor.stores.feed import Change, ChangeQuery, FeedAhead, FeedExpired

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRY_FIRST = 0.5  # seconds before the first retry; doubling up to RETRY_MAX
RETRY_MAX = 60.0
IDLE_WAIT = 30.0  # seconds one wait for a commit lasts


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The X-Processor-Signature value for `body` sent at `timestamp` (what a receiver recomputes)."""
    digest = hmac.new(secret.encode(), b"%d." % timestamp + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def cursor_name(url: str) -> str:
    """The stored position's name: from the URL, not the URL itself (it may hold a token)."""
    return "webhook/" + hashlib.sha256(url.encode()).hexdigest()[:16]


class Webhook:
    def __init__(self, store: ProjectionStore, url: str, secret: str, batch: int = 100, timeout: float = 10.0):
        self.store = store
        self.url = url
        self.secret = secret
        self.batch = batch
        self.timeout = timeout
        self.name = cursor_name(url)
        self.delivered = 0  # changes acknowledged since start
        self._failing: str | None = None

    async def run(self) -> None:
        """Push until cancelled. Outages of the receiver and of the store are retried, never skipped."""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as session:
            after = await self._retrying(self._start)
            while True:
                try:
                    page = await self._retrying(partial(self.store.changes, ChangeQuery(after=after, limit=self.batch)))
                except (FeedExpired, FeedAhead) as exc:
                    log.error("webhook stopped: %s", exc)
                    return
                if page.changes:
                    await self._retrying(partial(self._post, session, page.changes))
                    after = page.changes[-1].position
                    await self._retrying(partial(self.store.save_feed_cursor, self.name, after))
                    self.delivered += len(page.changes)
                if len(page.changes) < self.batch:
                    await self._retrying(partial(self.store.wait_for_changes, after, IDLE_WAIT))

    async def _start(self) -> int:
        saved = await self.store.feed_cursor(self.name)
        if saved is not None:
            return saved
        try:
            head = (await self.store.changes(ChangeQuery(limit=1))).head
        except FeedExpired as exc:
            head = (await self.store.changes(ChangeQuery(after=exc.oldest - 1, limit=1))).head
        await self.store.save_feed_cursor(self.name, head)
        log.info("webhook starts with the changes after position %d", head)
        return head

    async def _post(self, session: aiohttp.ClientSession, changes: list[Change]) -> None:
        body = orjson.dumps({"changes": [c.to_json() for c in changes]})
        headers = {
            "Content-Type": "application/json",
            "X-Processor-Signature": signature(self.secret, int(time.time()), body),
            "X-Processor-Positions": f"{changes[0].position}-{changes[-1].position}",
        }
        async with session.post(self.url, data=body, headers=headers) as response:
            if not 200 <= response.status < 300:
                raise _Refused(f"the receiver answered {response.status}")

    async def _retrying(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """`attempt()` until it succeeds, waiting longer after each failure; a failure is logged when it starts
        or changes, the recovery once."""
        delay = RETRY_FIRST
        while True:
            try:
                result = await attempt()
            except (aiohttp.ClientError, TimeoutError, _Refused, StoreError) as exc:
                text = f"{type(exc).__name__}: {exc}".rstrip(": ")
                if text != self._failing:
                    log.warning("webhook: %s; retrying", text)
                    self._failing = text
                await asyncio.sleep(delay)
                delay = min(RETRY_MAX, delay * 2)
                continue
            if self._failing is not None:
                log.info("webhook: delivering again")
                self._failing = None
            return result


class _Refused(Exception):
    """The receiver answered, but not with a 2xx."""


def install(app: web.Application, settings: Settings, store: ProjectionStore) -> None:
    """Run the webhook beside the server when one is configured, ending with it."""
    if not settings.webhook_url or not settings.webhook_secret:
        return
    webhook = Webhook(
        store, settings.webhook_url, settings.webhook_secret, settings.webhook_batch, settings.webhook_timeout
    )

    async def running(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.ensure_future(webhook.run())
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    app.cleanup_ctx.append(running)
