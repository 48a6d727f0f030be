"""PartitionProgress: how far a partition's checkpoint may advance without passing anything not yet durable.

Each message received is entered with the number of things that must be durable before it counts as done
(its admitted events, plus its dead letters as one). Events held in the reorder buffer or awaiting a store
commit keep their message, and so every later one, from counting. The checkpoint is the last message of
the unbroken done prefix.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any


class PartitionProgress:
    def __init__(self, generation: int = 0):
        # Bumped each time the partition is (re)opened, so late completions from an earlier ownership
        # (events released before the partition was lost) cannot mark a replayed message as done.
        self.generation = generation
        self._pending: OrderedDict[int, list[Any]] = OrderedDict()  # sequence number -> [offset, remaining]
        self.safe: tuple[int, str] | None = None  # (sequence number, offset) safe to checkpoint
        self.last_received: int | None = None
        self.done_messages = 0

    def received(self, sequence_number: int, offset: str, tokens: int) -> None:
        self.last_received = sequence_number
        self._pending[sequence_number] = [offset, tokens]
        if tokens <= 0 and len(self._pending) == 1:
            self._advance()

    def finish(self, sequence_number: int, tokens: int = 1) -> None:
        entry = self._pending.get(sequence_number)
        if entry is None:
            return
        entry[1] -= tokens
        if entry[1] <= 0 and next(iter(self._pending)) == sequence_number:
            self._advance()

    def _advance(self) -> None:
        pending = self._pending
        while pending:
            seq, entry = next(iter(pending.items()))
            if entry[1] > 0:
                break
            pending.popitem(last=False)
            self.safe = (seq, entry[0])
            self.done_messages += 1

    @property
    def in_flight(self) -> int:
        return len(self._pending)
