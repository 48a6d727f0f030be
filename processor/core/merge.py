"""Merge building blocks: an object's state as the join of what each of its events contributes.

An event contributes values to fields of four kinds:
- latest: the state keeps, per field, the value of the greatest (sequencer, id) event that carries it;
- latest per key: the same rule per key of a map field (the `merge` reducer's `data`);
- earliest: a map key -> time, keeping each key's earliest time (a run's status transitions);
- union: a set of values, kept in natural order (a model's versions seen).
Each join is commutative, associative and idempotent, so folding any subset of an object's events in any
order, in any batches, from any stored row, gives the state of folding them all in sequencer order.

Which event set a latest value is the row's provenance: `{field: [sequencer, id]}`, or for a per-key field
`{field: {key: [sequencer, id]}}`, stored only where it differs from the row's own event. A row without
provenance (written before merges existed) is thereby one event's worth of state.
"""

from __future__ import annotations

from bisect import insort
from collections.abc import Callable
from typing import Any

Order = tuple[str, ...]  # (sequencer, event id); effects across objects mark with longer tuples
State = dict[str, Any]


class Contribution:
    """What one event brings to its object's state, by kind of field."""

    __slots__ = ("latest", "latest_per_key", "earliest", "union")

    def __init__(
        self,
        latest: dict[str, Any] | None = None,
        latest_per_key: dict[str, dict[str, Any]] | None = None,
        earliest: dict[str, dict[str, str]] | None = None,
        union: dict[str, list[Any]] | None = None,
    ):
        self.latest = latest or {}
        self.latest_per_key = latest_per_key or {}
        self.earliest = earliest or {}
        self.union = union or {}


class MergeReducer:
    """A named reducer: what an event contributes, and which of its fields are maps or histories."""

    __slots__ = ("name", "contribute", "per_key", "histories", "finish", "upgrade")

    def __init__(
        self,
        name: str,
        contribute: Callable[[Any], Contribution],
        per_key: frozenset[str] = frozenset(),
        histories: frozenset[str] = frozenset(),
        finish: Callable[[State], None] | None = None,
        upgrade: Callable[[State, Order], State] | None = None,
    ):
        self.name = name
        self.contribute = contribute  # Admitted -> Contribution
        self.per_key = per_key
        self.histories = histories
        # A reducer with `finish` keeps its merge fields in `per_key` and `histories` only; `finish` derives
        # every other field of the state from them after each fold (a pure function of merges: order-free).
        self.finish = finish
        # Turns a row stored before the reducer had its merge fields into their shape (given its own event).
        self.upgrade = upgrade

    def merged(self, field: str) -> bool:
        """Whether `field` is joined (rather than derived by `finish`)."""
        return self.finish is None or field in self.per_key or field in self.histories


class MergedState:
    """An object's state while a fold joins contributions into it, starting from a stored row or nothing.

    `base` is the order of the stored row's own event, the provenance of every value its stored provenance
    does not name. `changed` says whether any join changed anything (a fold writes nothing otherwise).
    """

    __slots__ = ("reducer", "state", "marks", "base", "changed", "_only")

    def __init__(
        self,
        reducer: MergeReducer,
        state: State | None = None,
        provenance: dict[str, Any] | None = None,
        base: Order | None = None,
    ):
        self.reducer = reducer
        # A private copy, one level deep (joins change at most one level of nesting): a fold that loses a
        # compare-and-set is redone from the stored row, which must stay intact.
        self.state: State = {
            k: (dict(v) if type(v) is dict else list(v) if type(v) is list else v) for k, v in (state or {}).items()
        }
        self.marks: dict[str, Any] = {}
        for field, mark in (provenance or {}).items():
            self.marks[field] = {k: tuple(m) for k, m in mark.items()} if type(mark) is dict else tuple(mark)
        self.base = base
        self.changed = False
        # The one order every value so far came from, while there is one (then provenance is empty); _MIXED
        # once values come from several events.
        self._only: Any = base if not self.marks else _MIXED

    def join(self, order: Order, c: Contribution) -> None:
        state, marks = self.state, self.marks
        only = self._only
        if only is not _MIXED and only != order:
            self._only = order if only is None else _MIXED
        self._join_latest(state, marks, order, c.latest)
        for field, values in c.latest_per_key.items():
            current = state.get(field)
            if type(current) is not dict:
                current = state[field] = {}
                self.changed = True
            field_marks = marks.get(field)
            if type(field_marks) is not dict:
                field_marks = marks[field] = {}
            self._join_latest(current, field_marks, order, values)
        for field, times in c.earliest.items():
            current = state.get(field)
            if type(current) is not dict:
                current = state[field] = {}
                self.changed = True
            for key, time in times.items():
                known = current.get(key)
                if known is None or time < known:
                    current[key] = time
                    self.changed = True
        for field, additions in c.union.items():
            seen = state.get(field)
            if type(seen) is not list:
                seen = state[field] = []
                self.changed = True
            for value in additions:
                if value not in seen:
                    insort(seen, value, key=natural_order)
                    self.changed = True

    def _join_latest(self, target: dict[str, Any], marks: dict[str, Any], order: Order, values: dict[str, Any]) -> None:
        """Each value wins over what `target` holds unless a greater event set that (`marks` says which)."""
        base = self.base
        for key, value in values.items():
            mark = marks.get(key, base) if key in target else None
            if mark is None or order > mark:
                target[key] = value
                marks[key] = order
                self.changed = True

    def join_state(self, state: State, provenance: dict[str, Any], order: Order) -> None:
        """Join another row's state into this one (two writers' partial folds of one object): each of its
        latest values competes with the event that set it, its histories are unions."""
        reducer = self.reducer
        for field, value in state.items():
            if not reducer.merged(field):
                continue
            mark = provenance.get(field, order)
            if field in reducer.histories:
                if type(value) is dict:
                    self.join(order, Contribution(earliest={field: value}))
                elif type(value) is list:
                    self.join(order, Contribution(union={field: value}))
            elif field in reducer.per_key and type(value) is dict:
                marks = mark if type(mark) is dict else {}
                for key, item in value.items():
                    self.join(tuple(marks.get(key, order)), Contribution(latest_per_key={field: {key: item}}))
            else:
                self.join(tuple(mark) if type(mark) is not dict else order, Contribution(latest={field: value}))

    def provenance_for(self, winner: Order) -> dict[str, Any]:
        """The provenance to store with a row whose own event is `winner`: only what differs from it."""
        out: dict[str, Any] = {}
        if self._only is not _MIXED and self._only in (None, winner):
            return out  # every value came from the winner itself
        base, marks, reducer = self.base, self.marks, self.reducer
        for field, value in self.state.items():
            if field in reducer.histories or not reducer.merged(field):
                continue
            if field in reducer.per_key and type(value) is dict:
                field_marks = marks.get(field)
                field_marks = field_marks if type(field_marks) is dict else {}
                keyed = {}
                for key in value:
                    mark = field_marks.get(key, base)
                    if mark is not None and mark != winner:
                        keyed[key] = list(mark)
                if keyed:
                    out[field] = keyed
                continue
            mark = marks.get(field, base)
            if mark is not None and type(mark) is tuple and mark != winner:
                out[field] = list(mark)
        return out


_MIXED = object()


def natural_order(value: Any) -> tuple[Any, ...]:
    """Numbers (and strings of ASCII digits) by value, then other strings, then anything else by its text."""
    if isinstance(value, bool):
        return (2, 0, str(value))
    if isinstance(value, (int, float)):
        return (0, value, "")
    if isinstance(value, str):
        if value.isascii() and value.isdigit():
            return (0, int(value), value)
        return (1, 0, value)
    return (2, 0, repr(value))
