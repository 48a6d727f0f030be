"""The values that flow through the core: admitted events and where they came from, stored rows, dead letters
and outcome tallies. Imports msgspec, the events layer and the merge building blocks."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgspec

from processor.core.merge import MergeReducer
from processor.events.envelope import Event

ObjectKey = tuple[str, str]  # (source lowercased, object)

OUTCOMES = ("applied", "stale", "duplicate", "ignored", "rejected", "dead_lettered")


class Origin(msgspec.Struct, frozen=True, gc=False):
    """The hub message an event came from: the worker's, to hold its partition's checkpoint back until the
    event is durable. The core only compares origins (the same event twice from one origin is one arrival).

    A frozen struct out of the cyclic collector's sight: thousands wait in the reorder buffer, inside its keys,
    and a NamedTuple (a tuple subclass, never untracked) kept those keys tracked too, for the collector to
    rescan at every pass (measured: +2-5 us per message in the worker).
    """

    hub: str
    partition: str
    generation: int  # which ownership of the partition received it (see PartitionProgress.generation)
    sequence_number: int
    enqueued: float | None  # the hub's enqueue time, epoch seconds

    @property
    def label(self) -> str:
        """The message's name in its dead letters: `{hub}/{partition}@{sequence number}`, e.g. `events/0@12`."""
        return f"{self.hub}/{self.partition}@{self.sequence_number}"

    def __str__(self) -> str:  # what names an event's own dead letter (the projector's, for unstorable state)
        return self.label


class Admitted:
    """An event that passed every check and now waits its turn in its object's order.

    `origin` is the hub message it came from (the worker's); file ingest has none.
    """

    __slots__ = ("key", "order", "etag", "time", "event", "reducer", "size", "origin", "token")

    def __init__(
        self,
        key: ObjectKey,
        sequencer: str,
        etag: str | None,
        time: str,
        event: Event,
        reducer: MergeReducer,
        size: int,
        origin: Origin | None = None,
    ):
        self.key = key
        self.order = (sequencer, event.id)  # ties on the sequencer go to the larger event id
        self.etag = etag
        self.time = time
        self.event = event
        self.reducer = reducer
        self.size = size
        self.origin = origin
        self.token = 0  # set by the ReorderBuffer: which arrival this is

    @property
    def sequencer(self) -> str:
        return self.order[0]

    def __repr__(self) -> str:
        return f"Admitted({self.key[1]} {self.order})"


@dataclass(slots=True)
class Row:
    """What the projection keeps per object: its event (the greatest applied), its state, and bookkeeping.

    `provenance` says which event set each state value where that is not the row's own event (see
    `processor.core.merge`); `revision` counts the row's writes, for the stores' compare-and-set. Neither is
    part of the exported state.
    """

    source: str
    object: str
    event_type: str
    event_id: str
    sequencer: str
    etag: str | None
    state: dict[str, Any]
    updated_at: str
    provenance: dict[str, Any] = field(default_factory=dict)
    revision: int = 0

    @property
    def key(self) -> ObjectKey:
        return (self.source, self.object)

    @property
    def order(self) -> tuple[str, str]:
        return (self.sequencer, self.event_id)

    def to_json(self, internal: bool = False) -> dict[str, Any]:
        """The exported form (`processor export`, the HTTP API), fields in their documented order.

        State fields named with a leading underscore are a reducer's bookkeeping (a storage object's `_own` and
        `_timeline`, from which its other fields are derived): left out unless `internal`."""
        return {
            "source": self.source,
            "object": self.object,
            "event_type": self.event_type,
            "event_id": self.event_id,
            "sequencer": self.sequencer,
            "etag": self.etag,
            "state": self.state if internal else exported_state(self.state),
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_record(cls, r: Any, state: dict[str, Any], provenance: dict[str, Any] | None = None) -> Row:
        """From a store's row in `source, object, event_type, event_id, sequencer, etag, state, updated_at,
        provenance, revision` order (state and provenance already decoded)."""
        return cls(r[0], r[1], r[2], r[3], r[4], r[5], state, r[7], provenance or {}, r[9])


def exported_state(state: dict[str, Any]) -> dict[str, Any]:
    """A state as exported: without a reducer's bookkeeping (its fields named with a leading underscore)."""
    if any(k[:1] == "_" for k in state):
        return {k: v for k, v in state.items() if k[:1] != "_"}
    return state


@dataclass(slots=True)
class Write:
    """A new row for an object, valid only if the stored row is still the one the fold started from."""

    row: Row
    expected: int | None  # the revision of the row it replaces; None = must not exist yet
    # The applied and stale events folded into it, with their outcome: the stores' object history (issue 15)
    # when it is on; empty where a writer does not know them (file ingest's cache).
    events: tuple[tuple[str, Admitted], ...] = field(default=(), compare=False, repr=False)


@dataclass(slots=True)
class DeadLetter:
    reason: str
    body: bytes  # already truncated to what is worth keeping
    body_size: int  # of the whole original body
    # Which message: `{hub}/{partition}@{sequence number}` from the hub (`Origin.label`), `{file}:{line}` (or
    # `stdin:{line}`) from file ingest.
    origin: str
    event_id: str | None = None
    # Identifies the same bad message seen again (redelivery, re-ingest) so it is stored once.
    fingerprint: str = ""

    @classmethod
    def of(cls, reason: str, body: bytes, origin: str, event_id: str | None = None, keep: int = 4096) -> DeadLetter:
        """A dead letter keeping the first `keep` bytes of the body, fingerprinted by body and reason."""
        digest = hashlib.sha256(body)
        digest.update(reason.encode())
        return cls(reason, body[:keep], len(body), origin, event_id, digest.hexdigest())


@dataclass
class Tally:
    """Events by outcome and type. `read` counts every event decoded (or message that failed to decode)."""

    read: int = 0
    by_outcome_type: Counter[tuple[str, str]] = field(default_factory=Counter)
    # Things worth counting that are no outcome: an event whose subject and data name different objects.
    notes: Counter[tuple[str, str]] = field(default_factory=Counter)

    def add(self, outcome: str, event_type: str, n: int = 1) -> None:
        self.by_outcome_type[(outcome, event_type)] += n

    def note(self, what: str, event_type: str) -> None:
        self.notes[(what, event_type)] += 1

    def count(self, outcome: str) -> int:
        return sum(n for (o, _), n in self.by_outcome_type.items() if o == outcome)

    def summary(self) -> dict[str, int]:
        notes: Counter[str] = Counter()
        for (what, _), n in self.notes.items():
            notes[what] += n
        return {"read": self.read, **{o: self.count(o) for o in OUTCOMES}, **notes}
