"""What every SQLite store here shares: the thread its calls run on, the connection, the write transaction.

sqlite3 calls block, so each store runs them on one dedicated thread of its own and the event loop only awaits
them; one thread per connection also keeps a connection from being used by two threads at once. Used by the
projection store (`processor.stores.sqlite`) and the checkpoint store (`processor.hub.checkpoints`).

Imports only the standard library.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class SqliteThread:
    """One thread that runs a store's sqlite3 calls, in the order they are awaited."""

    def __init__(self, name: str):
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` on the thread. RuntimeError once the thread is shut down."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def shutdown(self) -> None:
        """Wait for the calls already queued, then end the thread."""
        self._executor.shutdown(wait=True)


BUSY_TIMEOUT = 30.0


def connect(path: str) -> sqlite3.Connection:
    """A connection to `path` in WAL mode, creating its folder (OSError when that fails).

    WAL and a 30 s busy timeout let several processes on one machine share the file. Autocommit
    (isolation_level=None): transactions are begun explicitly, by `immediate_transaction`.
    """
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False)
    # Switching a new file to WAL needs a lock for which SQLite does not call the busy handler: two stores
    # opening one new file at once failed "database is locked" (12 of 600 opens, three at a time). Retried, with
    # the busy timeout's bound.
    deadline = time.monotonic() + BUSY_TIMEOUT
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return db
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                db.close()
                raise
            time.sleep(0.01)


@contextmanager
def immediate_transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE, COMMIT at the end, ROLLBACK when anything fails (the COMMIT included).

    IMMEDIATE takes the write lock up front, so a busy writer is waited for (the busy timeout) instead of a
    read-then-write transaction failing midway when it cannot upgrade its lock.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
