"""`Cached`: one value computed at most once per `ttl` seconds, for the HTTP side's polled figures (stored counts,
partition status), which probes, scrapes and dashboards ask for every few seconds. Imports nothing of the
processor."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


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
