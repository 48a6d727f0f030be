"""Per-partition status: owner, checkpoint, last enqueued sequence number, and lag as KEDA computes it.

KEDA's `azure-eventhub` scaler (checkpointStrategy blobMetadata) reads the same checkpoint blobs; its rules are
reproduced here so that `processor status` shows the figure KEDA scales on, anomalies included:
- a partition never written to (last enqueued -1) has no lag;
- without a checkpoint, lag is every retained event (last - begin + 1), except that one retained event past
  sequence number 0 (begin == last != 0) counts as none;
- with one, lag is last - checkpoint; a checkpoint *ahead* of the hub (the hub was recreated, or its partition
  info is stale) wraps around int64: within `stale` (KEDA's default 10,000) of the wrap it counts 0, further
  it counts nearly 2^63, and KEDA scales to the maximum;
- a partition emptied by retention keeps its last sequence number, so a checkpoint behind it still counts.
The total KEDA acts on is the sum, capped at partitions x threshold (it never asks for more replicas than
partitions).

Read by `processor status` and the HTTP partition view; imports the settings and this package's clients.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from azure.eventhub.aio import CheckpointStore, EventHubConsumerClient

from processor.config import Settings
from processor.hub.clients import consumer_client, hub_name, namespace

INT64_MAX = 2**63 - 1
KEDA_STALE_THRESHOLD = 10_000  # KEDA's default stalePartitionInfoThreshold


def keda_lag(last_enqueued: int, begin: int, checkpoint_seq: int | None, stale: int = KEDA_STALE_THRESHOLD) -> int:
    """One partition's unprocessed events by KEDA's rules (see the module docstring)."""
    if last_enqueued == -1:
        return 0
    if checkpoint_seq is None:
        if (begin == 0 and last_enqueued == 0) or begin != last_enqueued:
            return last_enqueued - begin + 1
        return 0
    if last_enqueued >= checkpoint_seq:
        lag = last_enqueued - checkpoint_seq
    else:
        lag = (INT64_MAX - checkpoint_seq) + last_enqueued
    return 0 if lag > INT64_MAX - stale else lag


def keda_total(lags: list[int], threshold: int) -> int:
    """The lag KEDA hands the autoscaler: the sum (saturating at int64), capped at partitions x threshold."""
    total = min(sum(lags), INT64_MAX)
    if total // threshold > len(lags):
        return len(lags) * threshold
    return total


def lag_note(last_enqueued: int, begin: int, empty: bool, checkpoint_seq: int | None) -> str | None:
    """Why KEDA's figure for a partition may surprise an operator, or None."""
    if checkpoint_seq is not None and checkpoint_seq > last_enqueued >= -1:
        return "checkpoint ahead of the hub (recreated?): delete this checkpoint or KEDA may scale to the maximum"
    if checkpoint_seq is None and begin == last_enqueued != 0 and not empty:
        return "one event and no checkpoint: KEDA counts none"
    if empty and checkpoint_seq is not None and checkpoint_seq < last_enqueued:
        return "emptied by retention: KEDA still counts the events past the checkpoint"
    return None


async def partition_status(
    settings: Settings,
    checkpoints: CheckpointStore,
    consumer_group: str | None = None,
    client: EventHubConsumerClient | None = None,
) -> list[dict[str, Any]]:
    """Every partition's row; `client`, when given, is an open consumer client to reuse (else one is opened)."""
    group = consumer_group or settings.consumer_group
    ids = (namespace(settings), hub_name(settings), group)
    # The hub first, then the checkpoints, as KEDA reads them: the other way round, every event enqueued while
    # the hub is asked (seconds, with a new connection) would count as lag.
    if client is None:
        async with consumer_client(settings, consumer_group=group) as own:
            props = await _partition_properties(own)
    else:
        props = await _partition_properties(client)
    owners = {o["partition_id"]: o for o in await checkpoints.list_ownership(*ids)}
    marks = {c["partition_id"]: c for c in await checkpoints.list_checkpoints(*ids)}
    now = time.time()
    rows = []
    for pid in sorted(props, key=lambda p: (len(p), p)):
        p, owner, mark = props[pid], owners.get(pid), marks.get(pid)
        live = (
            owner is not None
            and owner.get("owner_id")
            and (owner.get("last_modified_time") or 0) + settings.ownership_expiration > now
        )
        seq = mark.get("sequence_number") if mark else None
        last, begin = p["last_enqueued_sequence_number"], p["beginning_sequence_number"]
        rows.append(
            {
                "partition": pid,
                "owner": owner["owner_id"] if live and owner is not None else None,
                "checkpoint_sequence_number": seq,
                "checkpoint_offset": mark.get("offset") if mark else None,
                "last_enqueued_sequence_number": last,
                "lag": keda_lag(last, begin, seq),
                "note": lag_note(last, begin, p["is_empty"], seq),
            }
        )
    return rows


async def _partition_properties(client: EventHubConsumerClient) -> dict[str, dict[str, Any]]:
    # Each call is a management request on a link of its own (~0.5 s here): ask for all partitions at once.
    ids = await client.get_partition_ids()
    return dict(zip(ids, await asyncio.gather(*(client.get_partition_properties(p) for p in ids))))


# Headroom over a caught-up replica's own lag (commit and checkpoint write times, KEDA's polling phase).
KEDA_HEADROOM = 1.5
# The rate per replica deploy/scaledobject.yaml is derived for: bench/worker_throughput.py measured one worker
# at several thousand messages/s on 2 cores; 1000 leaves room for a remote store and a slower node.
DESIGN_RATE_PER_REPLICA = 1000


def keda_threshold(rate_per_replica: float, settings: Settings) -> int:
    """The `unprocessedEventThreshold` at which a caught-up replica taking `rate_per_replica` messages/s
    does not scale out: its lag is at most rate x (reorder window + checkpoint interval), with headroom.
    Above it the backlog is real, and KEDA adds a replica per threshold of it."""
    window = settings.reorder_window + settings.checkpoint_every_seconds
    return math.ceil(rate_per_replica * window * KEDA_HEADROOM)
