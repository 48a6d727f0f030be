"""Checkpoint stores for the SDK's load balancer: blob (production), SQLite (one machine), memory (replay).

The SQLite store implements the SDK's `CheckpointStore` contract: ownership claims succeed only against the
etag the claimer last saw (or, for a first claim, when no row exists), which is what lets several worker
processes share the partitions safely. Timestamps are float seconds, as the SDK's ownership manager expects.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

from azure.eventhub.aio import CheckpointStore

from processor.config import ConfigError, Settings
from processor.stores.sqlite import sqlite_path

log = logging.getLogger(__name__)
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ownership (
    namespace TEXT NOT NULL, eventhub TEXT NOT NULL, consumer_group TEXT NOT NULL, partition_id TEXT NOT NULL,
    owner_id TEXT NOT NULL, last_modified REAL NOT NULL, etag TEXT NOT NULL,
    PRIMARY KEY (namespace, eventhub, consumer_group, partition_id)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    namespace TEXT NOT NULL, eventhub TEXT NOT NULL, consumer_group TEXT NOT NULL, partition_id TEXT NOT NULL,
    "offset" TEXT, sequence_number INTEGER NOT NULL,
    PRIMARY KEY (namespace, eventhub, consumer_group, partition_id)
);
"""


class SqliteCheckpointStore(CheckpointStore):
    def __init__(self, url: str):
        self.url = url
        self.path = sqlite_path(url)
        self._db: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-checkpoints")

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    async def close(self) -> None:
        def close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await self._run(close)
        self._thread.shutdown(wait=True)

    async def list_ownership(self, fully_qualified_namespace: str, eventhub_name: str, consumer_group: str,
                             **kwargs: Any) -> Iterable[dict[str, Any]]:
        def read() -> list[dict[str, Any]]:
            rows = self._conn().execute(
                "SELECT partition_id, owner_id, last_modified, etag FROM ownership "
                "WHERE namespace = ? AND eventhub = ? AND consumer_group = ?",
                (fully_qualified_namespace, eventhub_name, consumer_group),
            ).fetchall()
            return [
                {"fully_qualified_namespace": fully_qualified_namespace, "eventhub_name": eventhub_name,
                 "consumer_group": consumer_group, "partition_id": pid, "owner_id": owner,
                 "last_modified_time": modified, "etag": etag}
                for pid, owner, modified, etag in rows
            ]

        return await self._run(read)

    async def claim_ownership(self, ownership_list: Iterable[dict[str, Any]], **kwargs: Any) -> Iterable[dict[str, Any]]:
        wanted = [dict(o) for o in ownership_list]

        def claim() -> list[dict[str, Any]]:
            db = self._conn()
            claimed = []
            db.execute("BEGIN IMMEDIATE")
            try:
                for o in wanted:
                    key = (o["fully_qualified_namespace"], o["eventhub_name"], o["consumer_group"], o["partition_id"])
                    now, etag = time.time(), uuid.uuid4().hex
                    if o.get("etag"):
                        cur = db.execute(
                            "UPDATE ownership SET owner_id = ?, last_modified = ?, etag = ? WHERE namespace = ? AND "
                            "eventhub = ? AND consumer_group = ? AND partition_id = ? AND etag = ?",
                            (o["owner_id"], now, etag, *key, o["etag"]),
                        )
                    else:
                        cur = db.execute(
                            "INSERT INTO ownership VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                            (*key, o["owner_id"], now, etag),
                        )
                    if cur.rowcount == 1:
                        claimed.append({**o, "last_modified_time": now, "etag": etag})
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return claimed

        return await self._run(claim)

    async def update_checkpoint(self, checkpoint: dict[str, Any], **kwargs: Any) -> None:
        def write() -> None:
            self._conn().execute(
                "INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET "
                '"offset" = excluded."offset", sequence_number = excluded.sequence_number',
                (checkpoint["fully_qualified_namespace"], checkpoint["eventhub_name"], checkpoint["consumer_group"],
                 checkpoint["partition_id"], checkpoint["offset"], checkpoint["sequence_number"]),
            )

        await self._run(write)

    async def list_checkpoints(self, fully_qualified_namespace: str, eventhub_name: str, consumer_group: str,
                               **kwargs: Any) -> Iterable[dict[str, Any]]:
        def read() -> list[dict[str, Any]]:
            rows = self._conn().execute(
                'SELECT partition_id, "offset", sequence_number FROM checkpoints '
                "WHERE namespace = ? AND eventhub = ? AND consumer_group = ?",
                (fully_qualified_namespace, eventhub_name, consumer_group),
            ).fetchall()
            return [
                {"fully_qualified_namespace": fully_qualified_namespace, "eventhub_name": eventhub_name,
                 "consumer_group": consumer_group, "partition_id": pid, "offset": offset, "sequence_number": seq}
                for pid, offset, seq in rows
            ]

        return await self._run(read)


class MemoryCheckpointStore(SqliteCheckpointStore):
    """Checkpoints that live as long as the process: for `processor replay`, which must not touch live ones."""

    def __init__(self) -> None:
        super().__init__("sqlite:///:memory:")


async def open_checkpoint_store(settings: Settings) -> CheckpointStore:
    """The checkpoint store the settings name; creates the blob container when it is missing."""
    if settings.checkpoint_kind() == "blob":
        from azure.core.exceptions import ResourceExistsError
        from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore
        from azure.storage.blob.aio import ContainerClient

        if settings.checkpoint_connection_string:
            container = ContainerClient.from_connection_string(settings.checkpoint_connection_string,
                                                               settings.checkpoint_container)
            store = BlobCheckpointStore.from_connection_string(settings.checkpoint_connection_string,
                                                               settings.checkpoint_container)
        else:
            from azure.identity.aio import DefaultAzureCredential

            credential = DefaultAzureCredential()
            container = ContainerClient(settings.checkpoint_account_url, settings.checkpoint_container,
                                        credential=credential)
            store = BlobCheckpointStore(settings.checkpoint_account_url, settings.checkpoint_container,
                                        credential=credential)
        async with container:
            try:
                await container.create_container()
                log.info("created checkpoint container %s", settings.checkpoint_container)
            except ResourceExistsError:
                pass
        return store
    if settings.checkpoint_url in (None, "memory"):
        return MemoryCheckpointStore()
    if not settings.checkpoint_url.startswith("sqlite:///"):
        raise ConfigError(f"PROCESSOR_CHECKPOINT_URL: unsupported {settings.checkpoint_url!r}")
    return SqliteCheckpointStore(settings.checkpoint_url)


async def close_checkpoint_store(store: CheckpointStore) -> None:
    closer = getattr(store, "close", None)
    if closer is not None:
        await closer()
