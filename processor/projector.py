"""Projector: released events -> fold -> one store transaction, redoing the fold where another writer won.

This is the seam between the pure core and the stores, shared by file ingest and the Event Hubs worker.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from processor.core.fold import ObjectFold, fold_object
from processor.core.model import Admitted, DeadLetter, ObjectKey, Row, Tally
from processor.core.reorder import Released
from processor.stores.base import ProjectionStore, StoreError, utc_now

MAX_ROUNDS = 100


class Projector:
    def __init__(self, store: ProjectionStore, tally: Tally, clock: Callable[[], str] = utc_now):
        self.store = store
        self.tally = tally
        self.clock = clock

    async def apply(self, released: Released, dead_letters: list[DeadLetter]) -> None:
        """Commit `released` (and `dead_letters`) durably; outcomes are tallied once, for what was committed.

        Raises StoreError when the store fails; nothing is tallied then and the caller may retry the same call.
        """
        todo: dict[ObjectKey, list] = {k: v for k, v in released.items() if v}
        if not todo and not dead_letters:
            return
        now = self.clock()
        counted: list[tuple[str, str]] = []
        for _ in range(MAX_ROUNDS):
            rows = await self.store.load(list(todo))
            folds: dict[ObjectKey, ObjectFold] = {}
            for key, events in todo.items():
                folds[key], bad = fold_storable(events, rows.get(key), now)
                if bad:
                    dead_letters = [*dead_letters, *bad]
            writes = [f.write for f in folds.values() if f.write is not None]
            conflicts = await self.store.commit(writes, dead_letters)
            dead_letters = []
            for key, f in folds.items():
                if key not in conflicts:
                    counted.extend(f.outcomes)
            if not conflicts:
                for outcome, etype in counted:
                    self.tally.add(outcome, etype)
                return
            todo = {k: todo[k] for k in conflicts}
        raise StoreError(f"compare-and-set kept failing for {len(todo)} objects after {MAX_ROUNDS} rounds")


def fold_storable(events: list[Admitted], current: Row | None, now: str) -> tuple[ObjectFold, list[DeadLetter]]:
    """The fold of one object's events, and none of its dead letters; or, rarely, when an event made the
    state unstorable, the fold without such events, which become dead letters instead of failing the batch
    (and the next, forever)."""
    fold = fold_object(events, current, now)
    if fold.write is None or storable(fold.write.row.state):
        return fold, []
    return fold_skipping_unstorable(events, current, now)


def storable(state: dict) -> bool:
    """Whether the stores can serialise this state (orjson: 64-bit integers, bounded nesting)."""
    try:
        orjson.dumps(state)
    except (TypeError, orjson.JSONEncodeError):
        return False
    return True


def fold_skipping_unstorable(
    events: list[Admitted], current: Row | None, now: str
) -> tuple[ObjectFold, list[DeadLetter]]:
    """Fold event by event, leaving out (as dead letters) each event after which the state cannot be stored."""
    kept: list[Admitted] = []
    bad: list[DeadLetter] = []
    fold = fold_object([], current, now)
    for ev in events:
        trial = fold_object([*kept, ev], current, now)
        if trial.write is not None and not storable(trial.write.row.state):
            body = ev.event.body if isinstance(ev.event.body, bytes) else b""
            bad.append(
                DeadLetter.of(
                    f"{ev.event.type} event {ev.event.id} makes the state of {ev.key[1]!r} "
                    "unstorable (integers beyond 64 bits or nesting too deep)",
                    body,
                    str(ev.origin or ""),
                    ev.event.id,
                )
            )
            continue
        kept.append(ev)
        fold = trial
    fold.outcomes.extend(("dead_lettered", d_ev.event.type) for d_ev in events if d_ev not in kept)
    return fold, bad
