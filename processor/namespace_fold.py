"""The fold of storage events that reach beyond their own object: renames, directory deletes and moves.

`fold_namespace` folds a batch's storage objects with the effects their events have on other objects
(`processor.core.namespace`), loading what those effects need (the directories above each object, the known
objects beneath a directory that changed, a rename's destination), until no effect is new. Every effect is a
join, so this fixpoint is the same whatever order the events arrived in or were batched. The caller commits
every fold that writes in one transaction, so one event's updates of several objects land together.

The rows come through `RowSource`: the projector reads the store, file ingest its cache of rows. Imports the
core and the stores' types (the projector's layer).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Protocol

from processor.core import namespace
from processor.core.fold import ObjectFold
from processor.core.merge import MergeReducer
from processor.core.model import Admitted, ObjectKey, Row
from processor.core.namespace import Effect
from processor.events.storage_paths import ancestors

# Rounds of loading and propagating before giving up on a batch: each round follows effects one object
# further (a rename chain, a directory move of a moved directory), and real chains are a handful long.
MAX_ROUNDS = 64

Refold = Callable[[list[Admitted], Row | None, str, Sequence[Effect]], ObjectFold]


class RowSource(Protocol):
    async def rows(self, keys: Collection[ObjectKey]) -> dict[ObjectKey, Row]:
        """The current rows of these objects (absent = none yet)."""
        ...

    async def beneath(self, source: str, directory: str) -> list[ObjectKey]:
        """Every known object beneath `directory` (at any depth)."""
        ...


class NamespaceError(RuntimeError):
    """Effects kept spreading past MAX_ROUNDS (a bug, or a rename cycle this fold cannot settle)."""


def is_storage(reducer: MergeReducer) -> bool:
    return reducer.finish is namespace.finish


async def fold_namespace(
    batch: dict[ObjectKey, list[Admitted]], source: RowSource, now: str, refold: Refold
) -> dict[ObjectKey, ObjectFold]:
    """The folds of `batch` (storage objects' events) and of every object their effects reach."""
    reducer = next(iter(batch.values()))[0].reducer
    effects: dict[ObjectKey, dict[tuple[str, tuple[str, ...]], Effect]] = {}

    def add(effect: Effect) -> bool:
        held = effects.setdefault(effect.key, {})
        entry_key = next(iter(effect.contribution.latest_per_key[namespace.TIMELINE]))
        ident = (entry_key, effect.order)
        if ident in held:
            return False
        held[ident] = effect
        return True

    for events in batch.values():
        for ev in events:
            for effect in namespace.direct_effects(ev):
                add(effect)
    current: dict[ObjectKey, Row | None] = {}
    folds: dict[ObjectKey, ObjectFold] = {}
    beneath: dict[ObjectKey, list[str]] = {}
    todo = set(batch) | set(effects)
    for _ in range(MAX_ROUNDS):
        if not todo:
            return folds
        need = {k for k in todo if k not in current}
        need |= {(s, a) for s, name in todo for a in ancestors(name) if (s, a) not in current}
        if need:
            loaded = await source.rows(need)
            current.update({k: loaded.get(k) for k in need})
        for key in todo:
            held = effects.get(key, {})
            folds[key] = refold(batch.get(key, []), current[key], now, list(held.values()))

        def state_of(key: ObjectKey) -> dict | None:
            fold = folds.get(key)
            if fold is not None and fold.write is not None:
                return fold.write.row.state
            row = current.get(key)
            return row.state if row is not None else None

        spread: list[Effect] = []
        for key in todo:
            state = state_of(key)
            states = {(key[0], a): state_of((key[0], a)) for a in ancestors(key[1])}
            spread += namespace.pull(key, states, reducer)
            spread += namespace.forward(key, state, reducer)
            before = current.get(key)
            if namespace.tree_entries(key[1], state) != namespace.tree_entries(
                key[1], before.state if before is not None else None
            ):
                if key not in beneath:
                    known = {k[1] for k in await source.beneath(key[0], key[1])}
                    known |= {k[1] for k in (*current, *folds) if k[0] == key[0] and k[1].startswith(key[1] + "/")}
                    beneath[key] = sorted(known)
                spread += namespace.push(key, state, beneath[key], reducer)
        todo = {effect.key for effect in spread if add(effect)}
    raise NamespaceError(f"storage effects still spreading after {MAX_ROUNDS} rounds")
