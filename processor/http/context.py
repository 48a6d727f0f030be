"""What every handler reads: the settings, the store, the worker when one runs here, and small caches."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable, Generic, TypeVar

from aiohttp import web

from processor.config import Settings
from processor.http.hosts import HostRule
from processor.stores.base import ProjectionStore

log = logging.getLogger(__name__)

T = TypeVar("T")

COUNTS_TTL = 2.0  # seconds a store.counts() answer is reused (metrics scrapes, dashboard refreshes)
PARTITIONS_TTL = 3.0  # seconds a partition status (one AMQP round trip per partition) is reused


class Cached(Generic[T]):
    """One value computed at most once per `ttl` seconds; concurrent callers share the computation."""

    def __init__(self, ttl: float, compute: Callable[[], Awaitable[T]]):
        self.ttl = ttl
        self.compute = compute
        self._value: T | None = None
        self._at: float | None = None
        self._lock = asyncio.Lock()

    async def get(self) -> T:
        if self._fresh():
            return self._value  # type: ignore[return-value]
        async with self._lock:
            if not self._fresh():
                self._value = await self.compute()
                self._at = time.monotonic()
            return self._value  # type: ignore[return-value]

    def _fresh(self) -> bool:
        return self._at is not None and time.monotonic() - self._at < self.ttl


class StoreHealth:
    """The store's failures as the HTTP side meets them, logged when they start or change and when they end:
    probes and page refreshes ask every few seconds. The text (a path, a host) goes to the log, never out."""

    def __init__(self) -> None:
        self.failing: str | None = None

    def failed(self, where: str, exc: BaseException) -> None:
        text = str(exc) or type(exc).__name__
        if text != self.failing:
            log.warning("store failed answering %s: %s", where, text)
            self.failing = text

    def answered(self) -> None:
        if self.failing is not None:
            log.info("store answers again")
            self.failing = None


class Context:
    def __init__(self, settings: Settings, store: ProjectionStore, worker: Any, hosts: HostRule):
        self.settings = settings
        self.store = store
        self.worker = worker
        self.hosts = hosts
        self.store_health = StoreHealth()
        self.counts = Cached(COUNTS_TTL, store.counts)
        from processor.http.partitions import PartitionView

        self.partitions = PartitionView(self)

    async def close(self) -> None:
        await self.partitions.close()


CONTEXT = web.AppKey("processor.context", Context)


def context(request: web.Request) -> Context:
    return request.app[CONTEXT]
