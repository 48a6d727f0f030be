"""Checkpoint stores for the SDK's load balancer: blob (production), SQLite (one machine), memory (replay).

The SQLite store implements the SDK's `CheckpointStore` contract: ownership claims succeed only against the
etag the claimer last saw (or, for a first claim, when no row exists), which is what lets several worker
processes share the partitions safely. Timestamps are float seconds, as the SDK's ownership manager expects.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import uuid
from collections.abc import Iterable
from typing import Any

from azure.eventhub.aio import CheckpointStore

from processor.config import ConfigError, Settings
from processor.stores.sqlite_thread import SqliteThread, connect, immediate_transaction
from processor.stores.urls import sqlite_path

log = logging.getLogger(__name__)

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

# The SDK's key -> the column it is read from, in the order the SDK's dicts list them.
_OWNERSHIP_FIELDS = {
    "partition_id": "partition_id",
    "owner_id": "owner_id",
    "last_modified_time": "last_modified",
    "etag": "etag",
}
_CHECKPOINT_FIELDS = {"partition_id": "partition_id", "offset": '"offset"', "sequence_number": "sequence_number"}


class SqliteCheckpointStore(CheckpointStore):
    def __init__(self, url: str):
        self.url = url
        self.path = sqlite_path(url)
        self._db: sqlite3.Connection | None = None
        self._thread = SqliteThread("sqlite-checkpoints")

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            db = connect(self.path)
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    async def close(self) -> None:
        def close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        await self._thread.run(close)
        self._thread.shutdown()

    async def list_ownership(
        self, fully_qualified_namespace: str, eventhub_name: str, consumer_group: str, **kwargs: Any
    ) -> Iterable[dict[str, Any]]:
        return await self._thread.run(
            self._read, "ownership", _OWNERSHIP_FIELDS, fully_qualified_namespace, eventhub_name, consumer_group
        )

    async def claim_ownership(
        self, ownership_list: Iterable[dict[str, Any]], **kwargs: Any
    ) -> Iterable[dict[str, Any]]:
        wanted = [dict(o) for o in ownership_list]

        def claim() -> list[dict[str, Any]]:
            db = self._conn()
            claimed = []
            with immediate_transaction(db):
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
            return claimed

        return await self._thread.run(claim)

    async def update_checkpoint(self, checkpoint: dict[str, Any], **kwargs: Any) -> None:
        def write() -> None:
            self._conn().execute(
                "INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO UPDATE SET "
                '"offset" = excluded."offset", sequence_number = excluded.sequence_number',
                (
                    checkpoint["fully_qualified_namespace"],
                    checkpoint["eventhub_name"],
                    checkpoint["consumer_group"],
                    checkpoint["partition_id"],
                    checkpoint["offset"],
                    checkpoint["sequence_number"],
                ),
            )

        await self._thread.run(write)

    async def list_checkpoints(
        self, fully_qualified_namespace: str, eventhub_name: str, consumer_group: str, **kwargs: Any
    ) -> Iterable[dict[str, Any]]:
        return await self._thread.run(
            self._read, "checkpoints", _CHECKPOINT_FIELDS, fully_qualified_namespace, eventhub_name, consumer_group
        )

    def _read(
        self, table: str, fields: dict[str, str], namespace: str, eventhub: str, consumer_group: str
    ) -> list[dict[str, Any]]:
        """One consumer group's rows of `table` as the SDK's dicts: the group's names, then `fields`."""
        rows = (
            self._conn()
            .execute(
                f"SELECT {', '.join(fields.values())} FROM {table} "
                "WHERE namespace = ? AND eventhub = ? AND consumer_group = ?",
                (namespace, eventhub, consumer_group),
            )
            .fetchall()
        )
        group = {"fully_qualified_namespace": namespace, "eventhub_name": eventhub, "consumer_group": consumer_group}
        return [{**group, **dict(zip(fields, row))} for row in rows]


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
            container = ContainerClient.from_connection_string(
                settings.checkpoint_connection_string, settings.checkpoint_container
            )
            store = BlobCheckpointStore.from_connection_string(
                settings.checkpoint_connection_string, settings.checkpoint_container
            )
        else:
            from azure.identity.aio import DefaultAzureCredential

            credential = DefaultAzureCredential()
            account_url = settings.checkpoint_account_url or ""  # set: checkpoint_kind() said "blob"
            container = ContainerClient(account_url, settings.checkpoint_container, credential=credential)
            store = BlobCheckpointStore(account_url, settings.checkpoint_container, credential=credential)
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
