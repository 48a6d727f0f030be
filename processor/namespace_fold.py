"""The fold of storage events that reach beyond their own object: renames, directory deletes and moves.

`fold_namespace` folds a batch's storage objects with the effects their events have on other objects
(`processor.core.namespace`), loading what those effects need (the directories above each object, the known
objects beneath a directory that changed, a rename's destination), until no effect is new. Every effect is a
join, so this fixpoint is the same whatever order the events arrived in or were batched. The caller commits
every fold that writes in one transaction, so one event's updates of several objects land together.

Two writers (replicas on other partitions, two file ingests) could each miss the other's effect: one folds a
directory's delete and pushes it to the objects it knows beneath it, while the other creates an object beneath
it that pulled from the directory as it was before. So every fold that touches a hierarchical container also
writes the container's row (a `container` object, made by the first event beneath it), and the stores'
compare-and-set on that row lets only one of two such folds commit; the other is redone from the rows the
first wrote (`seed`: the objects whose effects must be recomputed), and the redo writes the container's row
again even when it has nothing else left to write (the lost commit's other rows landed without it). The price
is one more row written per container per batch, and, between replicas folding beneath one container at
once, a redone batch.

The rows come through `RowSource`: the projector reads the store, file ingest its cache of rows. Imports the
core and the stores' types (the projector's layer).
"""

from __future__ import annotations

import uuid
from bisect import bisect_left
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from typing import Protocol

from processor.core import namespace
from processor.core.fold import ObjectFold
from processor.core.merge import Contribution, MergeReducer
from processor.core.model import Admitted, ObjectKey, Row, Write
from processor.core.namespace import Effect
from processor.events.storage_paths import CONTAINERS, ancestors, container_of

# The provenance key of a container write's stamp (see _touch_containers).
STAMP = "_write"
# The event type a container's row names (no Azure event is the container's own).
CONTAINER_TYPE = "Microsoft.Storage.Container"
# Events that show a container has a hierarchical namespace (a flat blob container never sends them).
HIERARCHICAL = frozenset(
    "Microsoft.Storage." + t for t in ("BlobRenamed", "DirectoryCreated", "DirectoryRenamed", "DirectoryDeleted")
)

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


def container_key(key: ObjectKey) -> ObjectKey | None:
    container = container_of(key[1])
    return (key[0], CONTAINERS + container) if container else None


async def fold_namespace(
    batch: dict[ObjectKey, list[Admitted]],
    source: RowSource,
    now: str,
    refold: Refold,
    reducer: MergeReducer | None = None,
    seed: Collection[ObjectKey] = (),
) -> dict[ObjectKey, ObjectFold]:
    """The folds of `batch` (storage objects' events), of every object their effects reach, and of the
    containers they lie in. `seed`: objects to propagate from as if they had just changed (their
    effects are recomputed from their rows as they stand: after another writer won a compare-and-set)."""
    if reducer is None:
        reducer = next(iter(batch.values()))[0].reducer
    effects: dict[ObjectKey, dict[tuple[str, tuple[str, ...]], Effect]] = {}

    def add(effect: Effect) -> bool:
        held = effects.setdefault(effect.key, {})
        entries = effect.contribution.latest_per_key.get(namespace.TIMELINE)
        entry_key = next(iter(entries)) if entries else "own " + effect.event_id
        ident = (entry_key, effect.order)
        if ident in held:
            return False
        held[ident] = effect
        return True

    for events in batch.values():
        for ev in events:
            for effect in namespace.direct_effects(ev):
                add(effect)
    by_container = _by_container(batch)
    for container, events in by_container.items():
        add(_container_effect(container, events, reducer))
    current: dict[ObjectKey, Row | None] = {}
    folds: dict[ObjectKey, ObjectFold] = {}
    beneath: dict[ObjectKey, list[str]] = {}
    seen = _Sorted()  # every key this fold has read or written, for the objects beneath a directory
    # Objects in flat containers (no rename or directory event ever, nor in this batch) fold alone: no
    # directory above them has entries, no rename reaches them. A writer that makes the container
    # hierarchical meanwhile writes the container's row too, so one of the two folds is redone.
    loaded = await source.rows([*batch, *by_container])
    current.update({k: loaded.get(k) for k in (*batch, *by_container)})
    seen.add(current)
    hierarchical = {c for c, events in by_container.items() if _hierarchical(current[c], events)}
    flat = {k for k in batch if k not in seed and container_key(k) not in hierarchical}
    for key in flat:
        folds[key] = refold(batch[key], current[key], now, ())
    todo = (set(batch) - flat) | set(effects) | set(seed)
    for _ in range(MAX_ROUNDS):
        if not todo:
            return await _touch_containers(folds, current, source, seed)
        need = {k for k in todo if k not in current}
        need |= {c for k in todo if (c := container_key(k)) is not None and c not in current}
        need |= {(s, a) for s, name in todo for a in ancestors(name) if (s, a) not in current}
        if need:
            loaded = await source.rows(need)
            current.update({k: loaded.get(k) for k in need})
            seen.add(need)
        for key in todo:
            held = effects.get(key, {})
            folds[key] = refold(batch.get(key, []), current[key], now, list(held.values()))
        rows = _Rows(current, folds)
        spread: list[Effect] = []
        for key in todo:
            state = rows.state(key)
            spread += namespace.pull(key, rows.tree_entries, reducer)
            spread += namespace.forward(key, state, reducer)
            before = current.get(key)
            if key in seed or rows.tree_entries(key) != namespace.tree_entries(
                key[1], before.state if before is not None else None
            ):
                if key not in beneath:
                    known = {k[1] for k in await source.beneath(key[0], key[1])}
                    known |= {k[1] for k in keys_beneath(seen.sorted(), key)}
                    beneath[key] = sorted(known)
                spread += namespace.push(key, state, beneath[key], reducer)
        todo = {effect.key for effect in spread if add(effect)}
    raise NamespaceError(f"storage effects still spreading after {MAX_ROUNDS} rounds")


class _Rows:
    """The rows as a round of the fold left them: each object's newest state, each directory's tree entries."""

    def __init__(self, current: dict[ObjectKey, Row | None], folds: dict[ObjectKey, ObjectFold]):
        self.current = current
        self.folds = folds
        self._tree: dict[ObjectKey, list[tuple[str, dict]]] = {}

    def state(self, key: ObjectKey) -> dict | None:
        fold = self.folds.get(key)
        if fold is not None and fold.write is not None:
            return fold.write.row.state
        row = self.current.get(key)
        return row.state if row is not None else None

    def tree_entries(self, directory: ObjectKey) -> list[tuple[str, dict]]:
        found = self._tree.get(directory)
        if found is None:
            found = self._tree[directory] = namespace.tree_entries(directory[1], self.state(directory))
        return found


class _Sorted:
    """Keys kept sorted lazily: a directory's objects are a range of them (no scan)."""

    def __init__(self) -> None:
        self._keys: set[ObjectKey] = set()
        self._sorted: list[ObjectKey] = []

    def add(self, keys: Collection[ObjectKey]) -> None:
        self._keys.update(keys)
        self._sorted = []

    def sorted(self) -> list[ObjectKey]:
        if not self._sorted and self._keys:
            self._sorted = sorted(self._keys)
        return self._sorted


def keys_beneath(keys: list[ObjectKey], directory: ObjectKey) -> list[ObjectKey]:
    """Of sorted keys, those beneath `directory`: the range from `dir/` up to `dir0` ('0' follows '/')."""
    source, name = directory
    return keys[bisect_left(keys, (source, name + "/")) : bisect_left(keys, (source, name + "0"))]


def is_hierarchical(container: Row | None) -> bool:
    """Whether a container's row says a rename or directory event was ever folded beneath it."""
    return _hierarchical(container, [])


def _hierarchical(row: Row | None, events: list[Admitted]) -> bool:
    own = row.state.get(namespace.OWN) if row is not None else None
    return (type(own) is dict and own.get("hierarchical") is True) or any(
        ev.event.type in HIERARCHICAL for ev in events
    )


def _by_container(batch: dict[ObjectKey, list[Admitted]]) -> dict[ObjectKey, list[Admitted]]:
    out: dict[ObjectKey, list[Admitted]] = {}
    for key, events in batch.items():
        container = container_key(key)
        if container is not None:
            out.setdefault(container, []).extend(events)
    return out


def _container_effect(container: ObjectKey, events: list[Admitted], reducer: MergeReducer) -> Effect:
    """The container's row: it exists, and is hierarchical once a rename or directory event names it. Its
    event is always the same (`CONTAINER_TYPE`, id "container"): no event is the container's own, and a row
    whose event changed with every batch would be a change in the feed each time."""
    own: dict[str, object] = {"kind": "container"}
    if any(ev.event.type in HIERARCHICAL for ev in events):
        own["hierarchical"] = True
    last = max(events, key=lambda ev: (ev.time, ev.sequencer, ev.event.id))
    order = (last.time, last.sequencer, last.event.id)
    contribution = Contribution(latest_per_key={namespace.OWN: own})
    return Effect(container, order, contribution, CONTAINER_TYPE, "container", reducer)


async def _touch_containers(
    folds: dict[ObjectKey, ObjectFold],
    current: dict[ObjectKey, Row | None],
    source: RowSource,
    seed: Collection[ObjectKey] = (),
) -> dict[ObjectKey, ObjectFold]:
    """Every hierarchical container that a fold writes beneath is written too (its revision moves on), so that
    two writers folding beneath one container at once cannot both commit. Each such write carries a stamp of
    its own in the row's bookkeeping: a store takes a write identical to what another writer already made for
    no conflict, and two writers' container rows are often identical.

    So are the containers of `seed`, even when nothing beneath them is written now. A redo follows a commit
    whose container write lost while its other rows landed (a store commits every write whose own
    compare-and-set holds), so those rows moved no container revision: a writer that read before them and
    commits after cannot tell. Only this redo's container write can: when the redo finds those rows already
    written and nothing else to do, it still writes the container, so that it and that writer cannot both
    commit, and one of them folds again over the other's rows."""
    stamp = ["written by", uuid.uuid4().hex]
    writing = [key for key, fold in folds.items() if fold.write is not None]
    for key in [*writing, *seed]:
        container = container_key(key)
        if container is None or container == key:
            continue
        fold = folds.get(container)
        if fold is not None and fold.write is not None:
            row, expected = fold.write.row, fold.write.expected
            stored = current.get(container)
            if stored is not None and row.state == stored.state and row.order == stored.order:
                row = replace(row, updated_at=stored.updated_at)  # nothing to tell: no change for the feed
        else:
            if container not in current:
                current[container] = (await source.rows([container])).get(container)
            stored = current.get(container)
            if stored is None:
                continue
            row, expected = replace(stored, revision=stored.revision + 1), stored.revision
        if row.provenance.get(STAMP) != stamp:
            row = replace(row, provenance={**row.provenance, STAMP: stamp})
            folds[container] = ObjectFold(Write(row, expected), fold.outcomes if fold is not None else [])
    return folds
