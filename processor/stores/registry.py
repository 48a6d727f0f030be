"""Choosing a projection store by its URL: the one place that knows every store.

Adding a store: its module, and one row in `_STORES`. Each store is imported only when a URL names it, so a
process on SQLite never loads asyncpg. May import `processor.stores` modules only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from processor.stores.base import ProjectionStore
    from processor.stores.feed import FeedRetention
    from processor.stores.history import HistoryRetention


def _sqlite(url: str) -> ProjectionStore:
    from processor.stores.sqlite import SqliteStore

    return SqliteStore(url)


def _postgres(url: str) -> ProjectionStore:
    from processor.stores.postgres import PostgresStore

    return PostgresStore(url)


# URL scheme -> the store for it. The store itself checks the rest of the URL (and names what is wrong).
_STORES: dict[str, Callable[[str], ProjectionStore]] = {
    "sqlite": _sqlite,
    "postgresql": _postgres,
    "postgres": _postgres,
}


def open_store(
    url: str, retention: FeedRetention | None = None, history: HistoryRetention | None = None
) -> ProjectionStore:
    """A store for `url` (not yet opened), keeping `retention` of its change feed (else the defaults) and, with
    `history`, its objects' history. Raises ValueError naming what is wrong with the URL."""
    scheme, separator, _ = url.partition("://")
    make = _STORES.get(scheme) if separator else None
    if make is None:
        raise ValueError(f"unsupported store URL {url!r}: expected sqlite:///PATH or postgresql://...")
    store = make(url)
    if retention is not None:
        store.retention = retention
    store.history = history
    return store
