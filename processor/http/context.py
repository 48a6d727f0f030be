"""What every handler reads: the settings, the store, the worker when one runs here (as a `WorkerView`), the
store's health as HTTP meets it, and the cached counts and partition view. Imports the other http modules it
holds (cached, hosts, partitions, view), never a handler module."""

from __future__ import annotations

import logging

from aiohttp import web

from processor.config import Settings
from processor.http.cached import Cached
from processor.http.hosts import HostRule
from processor.http.partitions import PartitionView
from processor.http.view import WorkerView
from processor.stores.base import ProjectionStore

log = logging.getLogger(__name__)

COUNTS_TTL = 2.0  # seconds a store.counts() answer is reused (metrics scrapes, dashboard refreshes)


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
    def __init__(self, settings: Settings, store: ProjectionStore, worker: WorkerView | None, hosts: HostRule):
        self.settings = settings
        self.store = store
        self.worker = worker
        self.hosts = hosts
        self.store_health = StoreHealth()
        self.counts = Cached(COUNTS_TTL, store.counts)
        self.partitions = PartitionView(settings, worker)

    async def close(self) -> None:
        await self.partitions.close()


CONTEXT = web.AppKey("processor.context", Context)


def context(request: web.Request) -> Context:
    return request.app[CONTEXT]
