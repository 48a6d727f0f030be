"""Object history: which events made an object's state. Its shapes and what both stores share.

When on (a `HistoryRetention` on the store), every applied or stale event folded into a committed write is kept
with its outcome, once per (object, event id): the first outcome stands (a redelivered event counted stale
later is not kept twice). Written in the transaction of the row, so a conflicting write keeps nothing. Bounded
per object (the newest `per_object`, trimmed at each write of the object) and in time (`max_age`, pruned with
the change feed). Only writers that know the events record them: the worker's projector does; file ingest,
which writes rows from a cache, does not. Imports `processor.core.model`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from processor.core.model import ObjectKey, Write

HISTORY_OUTCOMES = ("applied", "stale")


@dataclass(frozen=True, slots=True)
class HistoryRetention:
    """Keep at most `per_object` events per object (>= 1) and none older than `max_age` seconds (0: no limit)."""

    per_object: int = 100
    max_age: float = 7 * 24 * 3600.0


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    event_id: str
    event_type: str
    time: str  # the event's own time
    sequencer: str  # its place in the object's order (the sort key the store keeps)
    outcome: str  # applied or stale
    partition: str | None  # the hub message it came in (None: not from a hub)
    sequence_number: int | None
    recorded_at: str  # the store's clock when its write committed

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "event_type": self.event_type,
            "time": self.time,
            "sequencer": self.sequencer,
            "outcome": self.outcome,
            "partition": self.partition,
            "sequence_number": self.sequence_number,
            "recorded_at": self.recorded_at,
        }


# What a store inserts per entry: source, object, event_id, event_type, time, sequencer, outcome, partition,
# sequence number.
HistoryRecord = tuple[str, str, str, str, str, str, str, str | None, int | None]


def records(writes: list[Write], conflicts: set[ObjectKey]) -> list[HistoryRecord]:
    """The history of the writes that were written (not in `conflicts`), in each write's event order."""
    out: list[HistoryRecord] = []
    for w in writes:
        if not w.events or w.row.key in conflicts:
            continue
        for outcome, ev in w.events:
            origin = ev.origin
            out.append(
                (
                    w.row.source,
                    w.row.object,
                    ev.event.id,
                    ev.event.type,
                    ev.time,
                    ev.sequencer,
                    outcome,
                    origin.partition if origin is not None else None,
                    origin.sequence_number if origin is not None else None,
                )
            )
    return out
