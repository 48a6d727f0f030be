"""The batch fold: released events + the stored rows they start from -> one write per touched object.

Per object, in order, an event is
- stale when it orders before the object's current event,
- a duplicate when it orders equal to it, carries its id, or carries the same etag for the same type
  (the same write reported twice),
- otherwise applied: its reducer folds it into the state and it becomes the current event.
The write is conditional on the stored row still being the one the fold started from (`Write.expected`);
the caller redoes the fold for objects whose condition failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from processor.core.model import Admitted, ObjectKey, Row, Write
from processor.core.reducers import REDUCERS, STATELESS


@dataclass(slots=True)
class ObjectFold:
    write: Write | None
    outcomes: list[tuple[str, str]] = field(default_factory=list)  # (outcome, event type) per event


def fold_object(events: list[Admitted], current: Row | None, now: str) -> ObjectFold:
    """`events` must be one object's, sorted by order."""
    outcomes: list[tuple[str, str]] = []
    if current is not None:
        order, event_id, etag, etype = current.order, current.event_id, current.etag, current.event_type
    else:
        order = event_id = etag = etype = None
    applied: list[Admitted] = []
    for ev in events:
        ev_type = ev.event.type
        if order is not None:
            if ev.order < order:
                outcomes.append(("stale", ev_type))
                continue
            if ev.order == order or ev.order[1] == event_id or (
                ev.etag is not None and ev.etag == etag and ev_type == etype
            ):
                outcomes.append(("duplicate", ev_type))
                continue
        applied.append(ev)
        order, event_id, etag, etype = ev.order, ev.order[1], ev.etag, ev_type
        outcomes.append(("applied", ev_type))
    if not applied:
        return ObjectFold(None, outcomes)
    last = applied[-1]
    if last.reducer in STATELESS:
        state = REDUCERS[last.reducer](None, last)
    else:
        state = _private_copy(current.state) if current is not None else None
        for ev in applied:
            state = REDUCERS[ev.reducer](state, ev)
    source, obj = last.key
    row = Row(source, obj, etype, event_id, order[0], etag, state, now)
    return ObjectFold(Write(row, current.order if current is not None else None), outcomes)


def _private_copy(state: dict) -> dict:
    # Reducers change at most one level of nesting (a run's transitions, a merge's data).
    return {k: (dict(v) if type(v) is dict else v) for k, v in state.items()}


def fold_batch(released: dict[ObjectKey, list[Admitted]], current: dict[ObjectKey, Row], now: str) -> dict[ObjectKey, ObjectFold]:
    return {key: fold_object(events, current.get(key), now) for key, events in released.items()}
