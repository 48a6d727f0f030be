"""The batch fold: released events + the stored rows they start from -> at most one write per touched object.

Every event's contribution is joined into the object's state (`processor.core.merge`), so the state is a
function of the set of events folded, whatever their order or batching. The object's own event (its winner)
is the greatest (sequencer, id) folded. Outcomes, counted per event against the object as it stands:
- stale: it orders before the object's event; what it knows is still joined (a field no later event
  carries, a status reached earlier), but it cannot overwrite anything a later event set;
- duplicate: it orders equal to the object's event, carries its id, or carries its etag with its type (the
  same write reported twice). It changes no state; a same-etag or same-id copy that orders later still
  becomes the object's event, so that the winner does not depend on which copy came first;
- applied: otherwise.
A fold that changes nothing writes nothing. The write is conditional on the stored row's revision
(`Write.expected`); the caller redoes the fold for objects whose condition failed.

Effects (`processor.core.namespace.Effect`: what another object's event does to this one, a rename's source
say) are joined like events but are never the object's event and count no outcome. A row that only effects
made has the sequencer "" (below any event's) and, as its event, the greatest effect's event id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from processor.core.merge import MergedState, MergeReducer
from processor.core.model import Admitted, ObjectKey, Row, Write

if TYPE_CHECKING:
    from processor.core.namespace import Effect


@dataclass(slots=True)
class ObjectFold:
    write: Write | None
    outcomes: list[tuple[str, str]] = field(default_factory=list)  # (outcome, event type) per event


def fold_object(events: list[Admitted], current: Row | None, now: str, effects: Sequence[Effect] = ()) -> ObjectFold:
    """`events`: one object's, in any order (sorted here, so that outcomes count as in sequencer order)."""
    outcomes: list[tuple[str, str]] = []
    if not events and not effects:
        return ObjectFold(None, outcomes)
    if len(events) > 1:
        events = sorted(events, key=_order)
    order: tuple[str, str] | None = None
    event_id: str | None = None
    etag: str | None = None
    etype: str | None = None
    reducer: MergeReducer = events[-1].reducer if events else effects[-1].reducer
    if current is not None:
        order, event_id, etag, etype = current.order, current.event_id, current.etag, current.event_type
        state = current.state
        if reducer.upgrade is not None:
            state = reducer.upgrade(state, current.order)
        merged = MergedState(reducer, state, current.provenance, current.order)
    else:
        merged = MergedState(reducer)
    winner_changed = False
    for ev in events:
        ev_type, ev_order = ev.event.type, ev.order
        if order is not None:
            if ev_order == order:
                outcomes.append(("duplicate", ev_type))
                continue  # the very event again: joining it would change nothing
            if ev_order[1] == event_id or (ev.etag is not None and ev.etag == etag and ev_type == etype):
                outcome = "duplicate"
            elif ev_order < order:
                outcome = "stale"
            else:
                outcome = "applied"
        else:
            outcome = "applied"
        outcomes.append((outcome, ev_type))
        merged.join(ev_order, ev.reducer.contribute(ev))
        if order is None or ev_order > order:
            order, event_id, etag, etype = ev_order, ev_order[1], ev.etag, ev_type
            winner_changed = True
    for effect in effects:
        merged.join(effect.order, effect.contribution)
        if order is None or (order[0] == "" and effect.event_id > order[1]):
            order, event_id, etag, etype = ("", effect.event_id), effect.event_id, None, effect.event_type
            winner_changed = True
    if not (merged.changed or winner_changed) or order is None or etype is None or event_id is None:
        return ObjectFold(None, outcomes)
    if reducer.finish is not None:
        reducer.finish(merged.state)
    source, obj = events[0].key if events else effects[0].key
    row = Row(
        source,
        obj,
        etype,
        event_id,
        order[0],
        etag,
        merged.state,
        now,
        merged.provenance_for(order),
        current.revision + 1 if current is not None else 1,
    )
    folded = tuple((o, ev) for (o, _), ev in zip(outcomes, events) if o in ("applied", "stale"))  # one outcome each
    return ObjectFold(Write(row, current.revision if current is not None else None, folded), outcomes)


def _order(ev: Admitted) -> tuple[str, str]:
    return ev.order


def fold_batch(
    released: dict[ObjectKey, list[Admitted]], current: dict[ObjectKey, Row], now: str
) -> dict[ObjectKey, ObjectFold]:
    return {key: fold_object(events, current.get(key), now) for key, events in released.items()}
