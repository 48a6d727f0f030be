"""Per-partition status: owner, checkpoint, last enqueued sequence number and lag.

Lag is last enqueued minus checkpointed sequence number: the figure KEDA's azure-eventhub scaler computes
from the same checkpoint blobs. A partition with no checkpoint counts every event it holds.
"""

from __future__ import annotations

import time
from typing import Any

from azure.eventhub.aio import CheckpointStore

from processor.config import Settings
from processor.hub.clients import consumer_client, hub_name, namespace


def lag_of(last_enqueued: int, begin: int, empty: bool, checkpoint_seq: int | None) -> int:
    if empty:
        return 0
    if checkpoint_seq is None:
        return last_enqueued - begin + 1
    return max(0, last_enqueued - checkpoint_seq)


async def partition_status(settings: Settings, checkpoints: CheckpointStore, consumer_group: str | None = None) -> list[dict[str, Any]]:
    group = consumer_group or settings.consumer_group
    ids = (namespace(settings), hub_name(settings), group)
    owners = {o["partition_id"]: o for o in await checkpoints.list_ownership(*ids)}
    marks = {c["partition_id"]: c for c in await checkpoints.list_checkpoints(*ids)}
    client = consumer_client(settings, consumer_group=group)
    async with client:
        partition_ids = await client.get_partition_ids()
        props = {p: await client.get_partition_properties(p) for p in partition_ids}
    now = time.time()
    rows = []
    for pid in sorted(partition_ids, key=lambda p: (len(p), p)):
        p, owner, mark = props[pid], owners.get(pid), marks.get(pid)
        live = owner is not None and owner.get("owner_id") and \
            (owner.get("last_modified_time") or 0) + settings.ownership_expiration > now
        seq = mark.get("sequence_number") if mark else None
        rows.append({
            "partition": pid,
            "owner": owner["owner_id"] if live else None,
            "checkpoint_sequence_number": seq,
            "checkpoint_offset": mark.get("offset") if mark else None,
            "last_enqueued_sequence_number": p["last_enqueued_sequence_number"],
            "lag": lag_of(p["last_enqueued_sequence_number"], p["beginning_sequence_number"], p["is_empty"], seq),
        })
    return rows
