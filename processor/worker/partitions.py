"""`PartitionState`: what the worker knows of one partition it owns, from its open to its close.

Written by the worker's flow (received, finished), its checkpointer (checkpointed) and its stall watch (last
enqueued, stalled); read by HTTP and `status`. Imports the core's `PartitionProgress`.
"""

from __future__ import annotations

from dataclasses import dataclass

from processor.core.progress import PartitionProgress


@dataclass
class PartitionState:
    progress: PartitionProgress  # which messages are done, and so how far a checkpoint may go
    opened_at: float  # the worker's clock
    checkpointed: tuple[int, str] | None = None  # (sequence number, offset) of the last checkpoint written
    checkpointed_at: float | None = None
    done_at_checkpoint: int = 0  # progress.done_messages when it was written
    last_received_at: float | None = None
    last_enqueued: int | None = None  # the hub's last sequence number, as last reported
    stalled: bool = False

    @property
    def lag(self) -> int | None:
        """Messages the hub holds past the checkpoint (as KEDA computes it); None until the hub said."""
        if self.last_enqueued is None:
            return None
        base = self.checkpointed[0] if self.checkpointed else -1
        return max(0, self.last_enqueued - base)
