"""Worker: Event Hubs messages in; the projection and checkpoints out.

The flow is one way: message -> intake (events, dead letters) -> reorder buffer (per object, window W) ->
projector (fold + one store transaction) -> partition progress -> checkpoint. A checkpoint only ever names a
message whose every event is durably applied or discarded, so a crash at any instant replays only what the
store already treats as stale or duplicate.

The feeder (the SDK consumer, in a process of its own) drives `open_partition`, `receive` and
`close_partition` in the order things happened on each partition; `run` is the single apply loop and
`run_checkpoints` writes checkpoints beside it. All share one event loop, and the state they touch is
changed between awaits only, so no locks are needed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from azure.eventhub.aio import CheckpointStore

from processor.config import Settings
from processor.core.intake import Intake
from processor.core.model import DeadLetter, Tally
from processor.core.progress import PartitionProgress
from processor.core.reorder import ReorderBuffer, Released
from processor.projector import Projector
from processor.stores.base import ProjectionStore, StoreError

log = logging.getLogger(__name__)

# A checkpoint write that hangs (the storage SDK retries an unreachable endpoint for minutes) is abandoned
# and tried again later; it runs beside the apply loop, so applying never waits on it.
CHECKPOINT_WRITE_TIMEOUT = 10.0
# Commits are coalesced: at most one flush per this many seconds (or a quarter of the window, if less), so
# a steady stream makes few, larger transactions instead of one per arrival; it adds at most this to latency.
MIN_FLUSH_GAP = 0.05
COMMIT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)


@dataclass
class PartitionState:
    progress: PartitionProgress
    opened_at: float
    checkpointed: tuple[int, str] | None = None
    checkpointed_at: float | None = None
    done_at_checkpoint: int = 0
    last_received_at: float | None = None
    last_enqueued: int | None = None
    stalled: bool = False


class Histogram:
    """Cumulative buckets, a count and a sum: what a Prometheus histogram exposes."""

    def __init__(self, bounds: tuple[float, ...]):
        self.bounds = bounds
        self.buckets = [0] * len(bounds)
        self.count = 0
        self.seconds = 0.0

    def observe(self, seconds: float) -> None:
        self.count += 1
        self.seconds += seconds
        for i, bound in enumerate(self.bounds):
            if seconds <= bound:
                self.buckets[i] += 1


class Streak:
    """Logs the first failure of a run of failures and the recovery, not every retry in between."""

    def __init__(self, what: str):
        self.what = what
        self.failures = 0
        self.since: float | None = None

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        if self.failures == 1:
            self.since = time.monotonic()
            log.error("%s failed, retrying with backoff until it recovers: %s", self.what, exc)

    def succeeded(self) -> None:
        if self.failures:
            log.warning("%s recovered after %d failed attempts over %.1fs", self.what, self.failures,
                        time.monotonic() - (self.since or time.monotonic()))
        self.failures = 0
        self.since = None


def backoff(attempt: int, base: float = 0.2, cap: float = 10.0) -> float:
    return min(cap, base * (2 ** min(attempt, 10)))


class Worker:
    def __init__(self, settings: Settings, store: ProjectionStore, checkpoint_store: CheckpointStore | None,
                 namespace: str, hub: str, consumer_group: str, intake: Intake | None = None,
                 clock: Callable[[], float] = time.monotonic):
        from processor.ingest import make_intake

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
        self.commits = Histogram(COMMIT_BUCKETS)
        # From the hub's enqueue timestamp to the store commit: the reorder window plus the pipeline.
        self.enqueue_latency = Histogram(LATENCY_BUCKETS)
        self.store_streak = Streak("store commit")
        self.checkpoint_streak = Streak("checkpoint write")
        self._generation = 0
        self._dead: list[tuple[list[DeadLetter], tuple[str, int, int]]] = []
        self._wake = asyncio.Event()
        self._checkpoint_wanted = asyncio.Event()
        # One flush at a time: a shutdown drain must not commit an object's later events while the apply loop
        # is still committing its earlier ones (they would then be stale, never applied).
        self._flush_lock = asyncio.Lock()
        self._room = asyncio.Event()
        self._room.set()
        self._accepting = True
        self._give_up_at: float | None = None
        self.running = False
        self.store_healthy = True
        self.consumer_alive: bool | None = None  # set by whoever runs the SDK consumer (app.run_worker)

    # --- called from the SDK's partition tasks ---------------------------------------------------------

    def open_partition(self, partition_id: str) -> None:
        if partition_id in self.partitions:
            # Opened again without a close (the SDK skips the close callback when closing its consumer fails):
            # what the old ownership holds must go, or its copies could stand in for the replayed ones.
            self.close_partition(partition_id, lost=True)
        self._generation += 1
        self.partitions[partition_id] = PartitionState(PartitionProgress(self._generation), self.clock())
        log.info("partition %s opened", partition_id)

    def close_partition(self, partition_id: str, lost: bool) -> None:
        state = self.partitions.pop(partition_id, None)
        if state is None:
            return
        gen = state.progress.generation
        dropped = self.buffer.drop(lambda e: e.origin[0] == partition_id and e.origin[1] == gen)
        self._dead = [d for d in self._dead if not (d[1][0] == partition_id and d[1][1] == gen)]
        if dropped or lost:
            # The next owner starts from our last checkpoint, so it receives these again.
            log.info("partition %s %s; %d buffered events dropped for its next owner to replay",
                     partition_id, "lost" if lost else "closed", len(dropped))

    async def receive(self, partition_id: str, deliveries: Iterable[Any], last_enqueued: int | None = None) -> None:
        """Take one batch of a partition: each delivery is (sequence number, offset, body, aeg-event-type, enqueued
        time as epoch seconds, body section: None for data, else "value" or "sequence"), as the feeder forwards
        them."""
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
        for seq, offset, body, kind, enqueued, section in deliveries:
            admitted, dead = intake.admit(body, tally, origin=(partition_id, gen, seq, enqueued),
                                          label=f"{hub}/{partition_id}@{seq}", delivery_kind=kind,
                                          body_section=section)
            progress.received(seq, offset, len(admitted) + (1 if dead else 0))
            for ev in admitted:
                if not buffer.add(ev, now):
                    tally.add("duplicate", ev.event.type)
                    progress.finish(seq)
            if dead:
                self._dead.append((dead, (partition_id, gen, seq)))
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
                except asyncio.TimeoutError:
                    pass
                self._wake.clear()
                last_flush = self.clock()
                await self.flush()
                self._checkpoint_wanted.set()
        finally:
            self.running = False

    async def run_checkpoints(self) -> None:
        """Write checkpoints after commits and every `checkpoint_every_seconds`, beside the apply loop."""
        while True:
            try:
                await asyncio.wait_for(self._checkpoint_wanted.wait(), self.settings.checkpoint_every_seconds)
            except asyncio.TimeoutError:
                pass
            self._checkpoint_wanted.clear()
            await self.checkpoint()

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
            await self._commit(released, dead)
            committed_at, latency = time.time(), self.enqueue_latency
            for events in released.values():
                for ev in events:
                    self._finish(ev.origin)
                    if ev.origin[3] is not None:
                        latency.observe(committed_at - ev.origin[3])
            for _, origin in dead:
                self._finish(origin)

    def _finish(self, origin: tuple) -> None:
        partition_id, gen, seq = origin[:3]
        state = self.partitions.get(partition_id)
        if state is not None and state.progress.generation == gen:
            state.progress.finish(seq)

    async def _commit(self, released: Released, dead: list[tuple[list[DeadLetter], Any]]) -> None:
        letters = [letter for group, _ in dead for letter in group]
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

    async def checkpoint(self, force: bool = False) -> None:
        if self.checkpoint_store is None:
            return
        settings, now = self.settings, self.clock()
        for partition_id, state in list(self.partitions.items()):
            safe = state.progress.safe
            if safe is None or safe == state.checkpointed:
                continue
            due = (
                force
                or state.progress.done_messages - state.done_at_checkpoint >= settings.checkpoint_every_events
                or now - (state.checkpointed_at or state.opened_at) >= settings.checkpoint_every_seconds
            )
            if not due:
                continue
            try:
                await asyncio.wait_for(self.checkpoint_store.update_checkpoint(
                    {**self.ids, "partition_id": partition_id, "offset": safe[1], "sequence_number": safe[0]}
                ), CHECKPOINT_WRITE_TIMEOUT)
            except Exception as exc:  # the SDK's stores raise their transport's errors; retried next round
                self.checkpoint_streak.failed(exc)
                continue
            self.checkpoint_streak.succeeded()
            if self.partitions.get(partition_id) is state:
                state.checkpointed, state.checkpointed_at = safe, now
                state.done_at_checkpoint = state.progress.done_messages

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
        except (asyncio.TimeoutError, StoreError) as exc:
            log.error("shutdown could not commit what it held within %.0fs (%s); it is not checkpointed and "
                      "will be received again", timeout, str(exc) or type(exc).__name__)
            return False
        try:
            await asyncio.wait_for(self.checkpoint(force=True), max(0.1, timeout - (self.clock() - started)))
        except asyncio.TimeoutError:
            log.error("shutdown could not write the last checkpoints within %.0fs; the next owner replays from "
                      "the previous ones (duplicates, no loss)", timeout)
            return False
        in_flight = sum(state.progress.in_flight for state in self.partitions.values())
        if in_flight:
            log.error("shutdown left %d messages unfinished; they are not checkpointed and will be received again",
                      in_flight)
        return self.checkpoint_streak.failures == 0 and in_flight == 0

    # --- what the HTTP layer and `status` read ----------------------------------------------------------

    def lag(self, state: PartitionState) -> int | None:
        if state.last_enqueued is None:
            return None
        base = state.checkpointed[0] if state.checkpointed else -1
        return max(0, state.last_enqueued - base)
