"""The checkpointer: writes each owned partition's checkpoint when it is due, never past what is durable.

A partition's checkpoint names the last message of its done prefix (`PartitionProgress.safe`): every event of
it and of every earlier message is committed or discarded. It is written when `checkpoint_every_events`
messages finished since the last one, or `checkpoint_every_seconds` passed, or (`write_due(force=True)`) at
shutdown. It runs beside the apply loop, which asks for a round after each commit (`want`); a write that hangs
is abandoned after `CHECKPOINT_WRITE_TIMEOUT` and tried again next round, so applying never waits on it.

Imports the settings and the worker's `PartitionState`; the checkpoint store is the SDK's contract.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from azure.eventhub.aio import CheckpointStore

from processor.config import Settings
from processor.worker.partitions import PartitionState
from processor.worker.retry import Streak

# The storage SDK retries an unreachable endpoint for minutes; a round must not wait for that.
CHECKPOINT_WRITE_TIMEOUT = 10.0


class Checkpointer:
    def __init__(
        self,
        store: CheckpointStore | None,
        ids: Mapping[str, str],
        partitions: Mapping[str, PartitionState],
        settings: Settings,
        clock: Callable[[], float],
    ):
        """`ids`: the fully qualified namespace, hub and consumer group, as the checkpoint store keys them;
        `partitions`: the owned partitions, live (the worker's own mapping)."""
        self.store = store
        self.ids = ids
        self.partitions = partitions
        self.every_events = settings.checkpoint_every_events
        self.every_seconds = settings.checkpoint_every_seconds
        self.clock = clock
        self.streak = Streak("checkpoint write")
        self._wanted = asyncio.Event()

    def want(self) -> None:
        """Ask for a round now (something was committed)."""
        self._wanted.set()

    async def run(self) -> None:
        """A round after each `want`, and every `checkpoint_every_seconds`, forever."""
        while True:
            try:
                await asyncio.wait_for(self._wanted.wait(), self.every_seconds)
            except TimeoutError:
                pass
            self._wanted.clear()
            await self.write_due()

    async def write_due(self, force: bool = False) -> None:
        """Write the checkpoint of every partition that is due (`force`: that has anything new)."""
        if self.store is None:
            return
        now = self.clock()
        for partition_id, state in list(self.partitions.items()):
            safe = state.progress.safe
            if safe is None or safe == state.checkpointed:
                continue
            due = (
                force
                or state.progress.done_messages - state.done_at_checkpoint >= self.every_events
                or now - (state.checkpointed_at or state.opened_at) >= self.every_seconds
            )
            if not due:
                continue
            try:
                await asyncio.wait_for(
                    self.store.update_checkpoint(
                        {**self.ids, "partition_id": partition_id, "offset": safe[1], "sequence_number": safe[0]}
                    ),
                    CHECKPOINT_WRITE_TIMEOUT,
                )
            except Exception as exc:  # the SDK's stores raise their transport's errors; retried next round
                self.streak.failed(exc)
                continue
            self.streak.succeeded()
            if self.partitions.get(partition_id) is state:  # not closed (and opened again) meanwhile
                state.checkpointed, state.checkpointed_at = safe, now
                state.done_at_checkpoint = state.progress.done_messages
