"""Partitions as the dashboard and /api/partitions show them.

With a hub configured (a worker runs here, or `processor serve` has the hub's settings) the view comes from
`partition_status`: every partition with its owner (other replicas' too), checkpoint, last enqueued sequence
number and lag. The attached worker adds what only it knows about the partitions it owns. When the hub cannot
be asked, the worker's own partitions are shown with the error.

Imports the hub adapters (the status query, a checkpoint store) when a hub is configured, and reads the worker
through `view.WorkerView` only.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from processor.config import Settings
from processor.http.cached import Cached
from processor.http.view import WorkerView

if TYPE_CHECKING:
    from azure.eventhub.aio import CheckpointStore

log = logging.getLogger(__name__)

PARTITIONS_TTL = 3.0  # seconds a partition status (one AMQP round trip per partition) is reused


def hub_configured(settings: Settings) -> bool:
    return bool(settings.eventhub_connection_string or settings.eventhub_namespace)


def local_rows(worker: WorkerView) -> dict[str, dict[str, Any]]:
    """What the attached worker knows about each partition it owns."""
    now = time.monotonic()
    rows = {}
    for pid, state in list(worker.partitions.items()):
        checkpointed = state.checkpointed
        rows[pid] = {
            "partition": pid,
            "here": True,
            "last_received_sequence_number": state.progress.last_received,
            "checkpoint_sequence_number": checkpointed[0] if checkpointed else None,
            "checkpoint_offset": checkpointed[1] if checkpointed else None,
            "checkpoint_age_seconds": round(now - state.checkpointed_at, 3) if state.checkpointed_at else None,
            "last_enqueued_sequence_number": state.last_enqueued,
            "lag": worker.lag(state),
            "stalled": bool(state.stalled),
        }
    return rows


def _sort_key(row: dict[str, Any]) -> tuple[int, str]:
    return (len(row["partition"]), row["partition"])


class PartitionView:
    def __init__(self, settings: Settings, worker: WorkerView | None):
        self.settings = settings
        self.worker = worker
        self._checkpoints: CheckpointStore | None = None  # opened here only when no worker lends its own
        self._cached = Cached(PARTITIONS_TTL, self._compute)

    async def get(self) -> dict[str, Any]:
        return await self._cached.get()

    async def _compute(self) -> dict[str, Any]:
        worker = self.worker
        local = local_rows(worker) if worker is not None else {}
        if not hub_configured(self.settings):
            return {"source": "worker" if worker is not None else "none", "partitions": _local_only(local)}
        try:
            hub_rows = await self._from_hub()
        except Exception as exc:  # the hub or checkpoint store is unreachable: show what we know, and why
            log.warning("partition status unavailable: %r", exc)
            return {
                "source": "worker" if worker is not None else "none",
                "partitions": _local_only(local),
                "error": f"partition status unavailable: {exc!r}"[:500],
            }
        rows = []
        for row in hub_rows:
            merged = {
                "here": row["partition"] in local,
                "last_received_sequence_number": None,
                "checkpoint_age_seconds": None,
                "stalled": False,
                **row,
            }
            extra = local.get(row["partition"])
            if extra is not None:
                for key in ("last_received_sequence_number", "checkpoint_age_seconds", "stalled"):
                    merged[key] = extra[key]
            rows.append(merged)
        return {"source": "hub", "partitions": sorted(rows, key=_sort_key)}

    async def _from_hub(self) -> list[dict[str, Any]]:
        from processor.hub.status import partition_status

        worker = self.worker
        if worker is not None and worker.checkpoint_store is not None:
            return await partition_status(self.settings, worker.checkpoint_store, worker.ids["consumer_group"])
        if self._checkpoints is None:
            from processor.hub.checkpoints import open_checkpoint_store

            self._checkpoints = await open_checkpoint_store(self.settings)
        return await partition_status(self.settings, self._checkpoints)

    async def close(self) -> None:
        if self._checkpoints is not None:
            from processor.hub.checkpoints import close_checkpoint_store

            checkpoints, self._checkpoints = self._checkpoints, None
            await close_checkpoint_store(checkpoints)


def _local_only(local: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(({"owner": None, **row} for row in local.values()), key=_sort_key)
