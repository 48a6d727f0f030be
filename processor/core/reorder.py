"""ReorderBuffer: holds each object's events so that out-of-order arrivals are applied in sequencer order.

Each event waits `window` seconds of processing time (None = until drained, for file ingest). When an event
is due, every pending event of its object ordered at or before it goes out with it, in order: releasing
only the due one would make those earlier events stale the moment it is applied. When the buffer is over
its bound (events or bytes) the oldest arrival is released early instead of growing or stalling.

Copies of one event (same id) from different messages are all held: each must finish its own message for
that message's partition to checkpoint, and the fold counts the extra copies as duplicates. Copies within
one message (same origin) are refused.

Time is passed in (`now`), never read, so the buffer is deterministic under test.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any

from processor.core.model import Admitted, ObjectKey, Origin

Released = dict[ObjectKey, list[Admitted]]


class ReorderBuffer:
    def __init__(self, window: float | None = None, max_events: int = 1_000_000, max_bytes: int = 1 << 30):
        if max_events < 1 or max_bytes < 1:
            raise ValueError("reorder bounds must be positive")
        self.window = window
        self.max_events = max_events
        self.max_bytes = max_bytes
        self._pending: dict[ObjectKey, dict[tuple[str, Origin | None], Admitted]] = {}
        # Arrivals in order, as (deadline, key, (event id, origin), token). An entry whose event already left,
        # or was dropped and added again (a new token), is skipped.
        self._arrivals: deque[tuple[float, ObjectKey, tuple[str, Origin | None], int]] = deque()
        self._tokens = 0
        self._events = 0
        self._bytes = 0

    def __len__(self) -> int:
        return self._events

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def objects(self) -> int:
        return len(self._pending)

    def add(self, ev: Admitted, now: float = 0.0) -> bool:
        """Hold `ev`. False when the same event from the same origin is already pending for its object."""
        held = self._pending.get(ev.key)
        ident = (ev.order[1], ev.origin)
        if held is None:
            held = self._pending[ev.key] = {}
        elif ident in held:
            return False
        self._tokens += 1
        ev.token = self._tokens
        held[ident] = ev
        self._events += 1
        self._bytes += ev.size
        deadline = math.inf if self.window is None else now + self.window
        self._arrivals.append((deadline, ev.key, ident, ev.token))
        return True

    def over_bound(self, spare: int = 0) -> bool:
        """At (or over) the event bound, or over the byte bound: the same test `receive`'s backpressure uses."""
        return self._events >= self.max_events - spare or self._bytes > self.max_bytes

    def release(self, now: float = 0.0, spare: int = 0) -> Released:
        """Events that are due at `now`, or pushed out by the bound, grouped per object in order.

        `spare`: when over the bound, free that many events more than needed, so that a full buffer is
        relieved in one batch rather than one event per call.
        """
        thresholds: dict[ObjectKey, tuple[str, str]] = {}
        early: dict[ObjectKey, list[Admitted]] = {}
        arrivals = self._arrivals
        relieving = self.over_bound()
        while arrivals:
            deadline, key, ident, token = arrivals[0]
            forced = relieving and self.over_bound(spare)
            if deadline > now and not forced:
                break
            arrivals.popleft()
            held = self._pending.get(key)
            ev = held.get(ident) if held else None
            if held is None or ev is None or ev.token != token:
                continue  # it left earlier (with a later event of its object), or this entry is an old arrival
            if forced:
                # Free its space at once, so that the bound check sees it on the next turn.
                self._forget(key, held, ev)
                early.setdefault(key, []).append(ev)
            current = thresholds.get(key)
            if current is None or ev.order > current:
                thresholds[key] = ev.order
        out: Released = {}
        for key, threshold in thresholds.items():
            chosen: list[Admitted] = []
            held = self._pending.get(key)
            if held:
                chosen = [ev for ev in held.values() if ev.order <= threshold]
                for ev in chosen:
                    self._forget(key, held, ev)
            chosen.extend(early.get(key, ()))
            chosen.sort(key=_order)
            out[key] = chosen
        return out

    def drain(self) -> Released:
        """Everything, for the end of a file or a shutdown that commits what it holds."""
        out = {key: sorted(held.values(), key=_order) for key, held in self._pending.items()}
        self._pending.clear()
        self._arrivals.clear()
        self._events = self._bytes = 0
        return out

    def drop(self, predicate: Callable[[Admitted], bool]) -> list[Admitted]:
        """Remove (without releasing) the events for which `predicate` holds, e.g. a lost partition's."""
        dropped: list[Admitted] = []
        for key in list(self._pending):
            held = self._pending[key]
            for ev in [e for e in held.values() if predicate(e)]:
                self._forget(key, held, ev)
                dropped.append(ev)
        return dropped

    def next_deadline(self) -> float | None:
        for deadline, key, ident, token in self._arrivals:
            held = self._pending.get(key)
            ev = held.get(ident) if held else None
            if ev is not None and ev.token == token:
                return deadline
        return None

    def _forget(self, key: ObjectKey, held: dict[tuple[str, Any], Admitted], ev: Admitted) -> None:
        del held[(ev.order[1], ev.origin)]
        self._events -= 1
        self._bytes -= ev.size
        if not held:
            del self._pending[key]


def _order(ev: Admitted) -> tuple[str, str]:
    return ev.order
