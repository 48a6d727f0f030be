"""Projector: released events -> fold -> one store transaction, redoing the fold where another writer won.

This is the seam between the pure core and the stores, shared by file ingest and the Event Hubs worker.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import orjson

from processor.core.fold import ObjectFold, fold_object
from processor.core.model import Admitted, DeadLetter, ObjectKey, Row, Tally
from processor.core.namespace import Effect
from processor.core.reorder import Released
from processor.namespace_fold import container_key, fold_namespace, is_storage
from processor.stores.base import ProjectionStore, Query, StoreError, utc_now

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
        done: set[ObjectKey] = set()
        storage = {k: v for k, v in todo.items() if is_storage(v[0].reducer)}
        # Objects a namespace fold wrote in an earlier round: when it is redone (another writer won the
        # compare-and-set on a container), their effects are recomputed against what that writer wrote.
        spread: set[ObjectKey] = set()
        for _ in range(MAX_ROUNDS):
            # Storage objects' containers in the same round trip (every storage fold reads and writes them).
            containers = {c for k in storage if (c := container_key(k)) is not None} if storage else set()
            rows = await self.store.load([*todo, *containers])
            folds: dict[ObjectKey, ObjectFold] = {}
            bad_ones: list[DeadLetter] = []
            if any(k in storage for k in todo):
                source = StoreRows(self.store, rows, [*todo, *containers])
                folds = await fold_namespace(storage, source, now, _collecting(bad_ones), seed=spread)
                spread |= {k for k, f in folds.items() if f.write is not None}
            for key, events in todo.items():
                if key not in folds:
                    folds[key], bad = fold_storable(events, rows.get(key), now)
                    bad_ones += bad
            writes = [f.write for f in folds.values() if f.write is not None]
            conflicts = await self.store.commit(writes, [*dead_letters, *bad_ones])
            dead_letters = []
            for key, f in folds.items():
                if key not in conflicts and key not in done:
                    counted.extend(f.outcomes)
                    done.add(key)
            if not conflicts:
                for outcome, etype in counted:
                    self.tally.add(outcome, etype)
                return
            todo = {k: todo[k] for k in conflicts if k in todo}
            if any(k not in todo or k in storage for k in conflicts):
                # Storage events reach other objects (renames, directories): all of the batch's are redone
                # together, their effects recomputed from the rows as they stand now.
                todo = {**todo, **storage}
        raise StoreError(f"compare-and-set kept failing for {len(todo)} objects after {MAX_ROUNDS} rounds")


class StoreRows:
    """The rows a namespace fold reads, from the store (and those the caller loaded already)."""

    def __init__(self, store: ProjectionStore, loaded: dict[ObjectKey, Row], asked: Collection[ObjectKey] = ()):
        self.store = store
        self.loaded = dict(loaded)
        self.absent = {k for k in asked if k not in loaded}  # read already, no row

    async def rows(self, keys: Collection[ObjectKey]) -> dict[ObjectKey, Row]:
        """The rows of `keys`; those asked for before (absent ones included) are not read again."""
        missing = [k for k in keys if k not in self.loaded and k not in self.absent]
        found = {k: self.loaded[k] for k in keys if k in self.loaded}
        if missing:
            fresh = await self.store.load(missing)
            self.loaded.update(fresh)
            self.absent.update(k for k in missing if k not in fresh)
            found.update(fresh)
        return found

    async def beneath(self, source: str, directory: str) -> list[ObjectKey]:
        return await keys_beneath(self.store, source, directory)


async def keys_beneath(store: ProjectionStore, source: str, directory: str, page: int = 1000) -> list[ObjectKey]:
    """The stored objects beneath a directory: a range of the primary key (source, object), page by page."""
    out: list[ObjectKey] = []
    after: ObjectKey | None = None
    while True:
        keys = await store.keys(Query(source=source, prefix=directory + "/", after=after, limit=page))
        out += keys
        if len(keys) < page:
            return out
        after = keys[-1]


def _collecting(
    bad_ones: list[DeadLetter],
) -> Callable[[list[Admitted], Row | None, str, Sequence[Effect]], ObjectFold]:
    def refold(events: list[Admitted], current: Row | None, now: str, effects: Sequence[Effect]) -> ObjectFold:
        fold, bad = fold_storable(events, current, now, effects)
        bad_ones.extend(b for b in bad if b not in bad_ones)
        return fold

    return refold


def fold_storable(
    events: list[Admitted], current: Row | None, now: str, effects: Sequence[Effect] = ()
) -> tuple[ObjectFold, list[DeadLetter]]:
    """The fold of one object's events, and none of its dead letters; or, rarely, when an event made the
    state unstorable, the fold without such events, which become dead letters instead of failing the batch
    (and the next, forever)."""
    fold = fold_object(events, current, now, effects)
    if fold.write is None or storable(fold.write.row.state):
        return fold, []
    return fold_skipping_unstorable(events, current, now, effects)


def storable(state: dict) -> bool:
    """Whether the stores can serialise this state (orjson: 64-bit integers, bounded nesting)."""
    try:
        orjson.dumps(state)
    except (TypeError, orjson.JSONEncodeError):
        return False
    return True


def fold_skipping_unstorable(
    events: list[Admitted], current: Row | None, now: str, effects: Sequence[Effect] = ()
) -> tuple[ObjectFold, list[DeadLetter]]:
    """Fold event by event, leaving out (as dead letters) each event after which the state cannot be stored."""
    kept: list[Admitted] = []
    bad: list[DeadLetter] = []
    fold = fold_object([], current, now, effects)
    for ev in events:
        trial = fold_object([*kept, ev], current, now, effects)
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
