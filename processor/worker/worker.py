"""Worker: Event Hubs messages in; the projection and checkpoints out.

The flow is one way: message -> intake (events, dead letters) -> reorder buffer (per object, window W) ->
projector (fold + one store transaction) -> partition progress -> checkpoint. A checkpoint only ever names a
message whose every event is durably applied or discarded, so a crash at any instant replays only what the
store already treats as stale or duplicate.

The feeder (the SDK consumer, in a process of its own; `processor.worker.feed` applies its frames) drives
`open_partition`, `receive` and `close_partition` in the order things happened on each partition; `run` is the
single apply loop, and the checkpointer (`processor.worker.checkpointer`) writes checkpoints beside it. All
share one event loop, and the state they touch is changed between awaits only, so no locks are needed.

Imports the core, the projector, the stores' contract, the feeder's wire format (`Delivery`) and the worker's
own parts (partition state, checkpointer, retry, metrics).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from azure.eventhub.aio import CheckpointStore

from processor.admission import make_intake
from processor.config import Settings
from processor.core.intake import Intake
from processor.core.model import DeadLetter, Origin, Tally
from processor.core.progress import PartitionProgress
from processor.core.reorder import Released, ReorderBuffer
from processor.hub.wire import Delivery
from processor.projector import Projector
from processor.stores.base import ProjectionStore, StoreError
from processor.worker.checkpointer import Checkpointer
from processor.worker.history import History
from processor.worker.metrics import COMMIT_BUCKETS, Histogram, latency_buckets
from processor.worker.partitions import PartitionState
from processor.worker.retry import Streak, backoff

if TYPE_CHECKING:
    from processor.worker.commit_spans import CommitSpans

__all__ = ["PartitionState", "Worker"]

log = logging.getLogger(__name__)

# Commits are coalesced: at most one flush per this many seconds (or a quarter of the window, if less), so
# a steady stream makes few, larger transactions instead of one per arrival; it adds at most this to latency.
MIN_FLUSH_GAP = 0.05


class _HeldDeadLetters:
    """A message's dead letters, held until the next commit, and the message they finish."""

    __slots__ = ("letters", "origin")

    def __init__(self, letters: list[DeadLetter], origin: Origin):
        self.letters = letters
        self.origin = origin


class Worker:
    def __init__(
        self,
        settings: Settings,
        store: ProjectionStore,
        checkpoint_store: CheckpointStore | None,
        namespace: str,
        hub: str,
        consumer_group: str,
        intake: Intake | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.settings = settings
        self.store = store
        self.checkpoint_store = checkpoint_store
        self.ids = {"fully_qualified_namespace": namespace, "eventhub_name": hub, "consumer_group": consumer_group}
        self.intake = intake or make_intake(settings)
        self.clock = clock
        self.buffer = ReorderBuffer(settings.reorder_window, settings.reorder_max_events, settings.reorder_max_bytes)
        self.tally = Tally()
        self.projector = Projector(store, self.tally)
        self.partitions: dict[str, PartitionState] = {}
        self.checkpointer = Checkpointer(checkpoint_store, self.ids, self.partitions, settings, clock)
        self.commits = Histogram(COMMIT_BUCKETS)
        # From the hub's enqueue timestamp to the store commit: the reorder window plus the pipeline.
        self.enqueue_latency = Histogram(latency_buckets(settings.reorder_window))
        self.store_streak = Streak("store commit")
        self._generation = 0
        self._dead: list[_HeldDeadLetters] = []
        self._wake = asyncio.Event()
        # One flush at a time: a shutdown drain must not commit an object's later events while the apply loop
        # is still committing its earlier ones (they would then be stale, never applied).
        self._flush_lock = asyncio.Lock()
        self._room = asyncio.Event()
        self._room.set()
        self._accepting = True
        self._give_up_at: float | None = None
        self.running = False
        self.store_healthy = True
        self.consumer_alive: bool | None = None  # set by whoever runs the SDK consumer (feed, watches)
        self.spans: CommitSpans | None = None  # a span per commit, when tracing is on (set before the first frame)
        self.history = History()  # the last hour, sampled by run_worker for the dashboard

    @property
    def checkpoint_streak(self) -> Streak:
        """The checkpointer's run of failed writes."""
        return self.checkpointer.streak

    # --- driven by the feeder's frames, in the order things happened on each partition ------------------

    def open_partition(self, partition_id: str) -> None:
        if partition_id in self.partitions:
            # Opened again without a close (the SDK skips the close callback when closing its consumer fails):
            # what the old ownership holds must go, or its copies could stand in for the replayed ones.
            self.close_partition(partition_id, lost=True)
        self._generation += 1
        self.partitions[partition_id] = PartitionState(PartitionProgress(self._generation), self.clock())
        log.info("partition %s opened", partition_id, extra={"partition": partition_id})

    def close_partition(self, partition_id: str, lost: bool) -> None:
        state = self.partitions.pop(partition_id, None)
        if state is None:
            return
        gen = state.progress.generation

        def of_this_ownership(origin: Origin | None) -> bool:
            return origin is not None and origin.partition == partition_id and origin.generation == gen

        dropped = self.buffer.drop(lambda ev: of_this_ownership(ev.origin))
        if self.spans is not None:
            self.spans.forget(partition_id)
        self._dead = [held for held in self._dead if not of_this_ownership(held.origin)]
        if dropped or lost:
            # The next owner starts from our last checkpoint, so it receives these again.
            log.info(
                "partition %s %s; %d buffered events dropped for its next owner to replay",
                partition_id,
                "lost" if lost else "closed",
                len(dropped),
                extra={"partition": partition_id},
            )

    async def receive(
        self, partition_id: str, deliveries: Iterable[Delivery], last_enqueued: int | None = None
    ) -> None:
        """Take one batch of a partition, as the feeder forwards it; `last_enqueued`: the hub's last sequence
        number of the partition, when it said."""
        if not self._accepting:
            return  # shutting down: not checkpointed, so the next owner receives these
        while len(self.buffer) >= self.buffer.max_events and self._accepting:
            self._wake.set()
            self._room.clear()
            await self._room.wait()
        if not self._accepting:
            return
        state = self.partitions.get(partition_id)
        if state is None:
            self.open_partition(partition_id)
            state = self.partitions[partition_id]
        progress, gen, now = state.progress, state.progress.generation, self.clock()
        intake, buffer, tally = self.intake, self.buffer, self.tally
        # Deadlines grow with arrival, so the apply loop, asleep until the oldest one, only needs waking when
        # the buffer goes from empty (asleep for the checkpoint interval) to holding something.
        was_empty = len(buffer) == 0
        hub = self.ids["eventhub_name"]
        diagnostic = self.spans.diagnostic_ids(partition_id, gen) if self.spans is not None else None
        for d in deliveries:
            seq = d.sequence_number
            if diagnostic is not None and d.diagnostic_id is not None:
                diagnostic[seq] = d.diagnostic_id
            origin = Origin(hub, partition_id, gen, seq, d.enqueued)
            admitted, dead = intake.admit(
                d.body, tally, origin=origin, label=origin.label, delivery_kind=d.kind, body_section=d.section
            )
            progress.received(seq, d.offset, len(admitted) + (1 if dead else 0))
            for ev in admitted:
                if not buffer.add(ev, now):
                    tally.add("duplicate", ev.event.type)
                    progress.finish(seq)
            if dead:
                self._dead.append(_HeldDeadLetters(dead, origin))
        state.last_received_at = now
        state.stalled = False
        if last_enqueued is not None:
            state.last_enqueued = last_enqueued
        if self._dead or buffer.over_bound() or (was_empty and len(buffer)):
            self._wake.set()

    # --- the apply loop ------------------------------------------------------------------------------

    async def run(self) -> None:
        """Release due events and commit them, forever; checkpoints follow each commit."""
        self.running = True
        gap = min(MIN_FLUSH_GAP, self.settings.reorder_window / 4)
        last_flush = float("-inf")
        try:
            while True:
                deadline = self.buffer.next_deadline()
                timeout = self.settings.checkpoint_every_seconds
                if deadline is not None:
                    now = self.clock()
                    timeout = min(timeout, max(0.0, deadline - now, last_flush + gap - now))
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout)
                except TimeoutError:
                    pass
                self._wake.clear()
                last_flush = self.clock()
                await self.flush()
                self.checkpointer.want()
        finally:
            self.running = False

    async def flush(self, drain: bool = False) -> None:
        async with self._flush_lock:
            await self._flush(drain)

    async def _flush(self, drain: bool) -> None:
        spare = max(1, self.buffer.max_events // 10)
        released = self.buffer.drain() if drain else self.buffer.release(self.clock(), spare=spare)
        dead, self._dead = self._dead, []
        if len(self.buffer) < self.buffer.max_events:
            self._room.set()
        if released or dead:
            if self.spans is None:
                await self._commit(released, dead)
            else:
                with self.spans.span(released, [held.origin for held in dead]):
                    await self._commit(released, dead)
            committed_at, latency = time.time(), self.enqueue_latency
            for events in released.values():
                for ev in events:
                    origin = ev.origin
                    if origin is None:
                        continue  # only file ingest's events have none; every one received here has its message
                    self._finish(origin)
                    if origin.enqueued is not None:
                        latency.observe(committed_at - origin.enqueued)
            for held in dead:
                self._finish(held.origin)
            if self.spans is not None:
                self.spans.prune(self.partitions)

    def _finish(self, origin: Origin) -> None:
        state = self.partitions.get(origin.partition)
        if state is not None and state.progress.generation == origin.generation:
            state.progress.finish(origin.sequence_number)

    async def _commit(self, released: Released, dead: list[_HeldDeadLetters]) -> None:
        letters = [letter for held in dead for letter in held.letters]
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                await self.projector.apply(released, letters)
            except StoreError as exc:
                self.store_healthy = False
                self.store_streak.failed(exc)
                if self._give_up_at is not None and self.clock() >= self._give_up_at:
                    raise
                attempt += 1
                await asyncio.sleep(backoff(attempt))
                continue
            self.commits.observe(time.perf_counter() - started)
            self.store_healthy = True
            self.store_streak.succeeded()
            return

    async def shutdown(self, timeout: float) -> bool:
        """Stop accepting, commit what is held, then checkpoint, all within `timeout` seconds.

        True when everything held was committed and checkpointed in time. What was not is simply not
        checkpointed, so the next owner receives it again: late, never lost.
        """
        self._accepting = False
        self._room.set()
        started = self.clock()
        self._give_up_at = started + timeout
        try:
            await asyncio.wait_for(self.flush(drain=True), timeout)
        except (TimeoutError, StoreError) as exc:
            log.error(
                "shutdown could not commit what it held within %.0fs (%s); it is not checkpointed and "
                "will be received again",
                timeout,
                str(exc) or type(exc).__name__,
            )
            return False
        try:
            await asyncio.wait_for(
                self.checkpointer.write_due(force=True), max(0.1, timeout - (self.clock() - started))
            )
        except TimeoutError:
            log.error(
                "shutdown could not write the last checkpoints within %.0fs; the next owner replays from "
                "the previous ones (duplicates, no loss)",
                timeout,
            )
            return False
        in_flight = sum(state.progress.in_flight for state in self.partitions.values())
        if in_flight:
            log.error(
                "shutdown left %d messages unfinished; they are not checkpointed and will be received again", in_flight
            )
        return self.checkpoint_streak.failures == 0 and in_flight == 0

    # --- what the HTTP layer and `status` read ----------------------------------------------------------

    def lag(self, state: PartitionState) -> int | None:
        """Last enqueued minus checkpointed sequence number of an owned partition (None: not known yet)."""
        return state.lag
