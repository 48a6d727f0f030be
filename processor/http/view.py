"""The worker as the HTTP layer reads it: `WorkerView`, the one seam between a worker running in this process and
the probes, /metrics, /api/summary and the partition view.

The worker (`processor.worker.worker.Worker`) satisfies it structurally, by its attributes of the same names: it
never imports this module, and HTTP never imports the worker. Every member is read-only here: HTTP only reads.
Imports, for type checking only, the core's types and the worker's `PartitionState` (HTTP hands a partition's
state back to `lag`, so a protocol of its fields would not be the worker's own parameter type).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from azure.eventhub.aio import CheckpointStore

    from processor.core.model import Tally
    from processor.core.reorder import ReorderBuffer
    from processor.worker.worker import PartitionState


class HistogramView(Protocol):
    """Cumulative buckets, a count and a sum of seconds: what a Prometheus histogram exposes."""

    @property
    def bounds(self) -> Sequence[float]: ...

    @property
    def buckets(self) -> Sequence[int]:
        """Observations at or below each bound."""
        ...

    @property
    def count(self) -> int: ...

    @property
    def seconds(self) -> float: ...


class HistoryView(Protocol):
    """The worker's sampled last hour (processor.worker.history.History)."""

    def series(self) -> dict[str, Any]:
        """interval, span and points: rates, lag and latency per interval, oldest first."""
        ...


class WorkerView(Protocol):
    """What HTTP reads of the worker: its health, its counters, the partitions it owns."""

    @property
    def running(self) -> bool:
        """The apply loop runs."""
        ...

    @property
    def store_healthy(self) -> bool:
        """The last store commit succeeded."""
        ...

    @property
    def consumer_alive(self) -> bool | None:
        """The SDK consumer runs (False: it stopped, or the hub or consumer group is missing)."""
        ...

    @property
    def ids(self) -> Mapping[str, str]:
        """fully_qualified_namespace, eventhub_name, consumer_group."""
        ...

    @property
    def tally(self) -> Tally:
        """Events by outcome and type."""
        ...

    @property
    def buffer(self) -> ReorderBuffer:
        """The events waiting in the reorder window."""
        ...

    @property
    def commits(self) -> HistogramView:
        """Store transaction durations."""
        ...

    @property
    def enqueue_latency(self) -> HistogramView:
        """From the hub's enqueue time of an event to its store commit."""
        ...

    @property
    def partitions(self) -> Mapping[str, PartitionState]:
        """The partitions owned now, by id."""
        ...

    @property
    def history(self) -> HistoryView:
        """The last hour, sampled (the dashboard's charts)."""
        ...

    @property
    def checkpoint_store(self) -> CheckpointStore | None:
        """Lent to the partition view, which then opens no store of its own."""
        ...

    def lag(self, state: PartitionState) -> int | None:
        """Last enqueued minus checkpointed sequence number of an owned partition (None: not known yet)."""
        ...
