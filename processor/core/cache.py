"""StateCache: a bounded cache of object rows, for folding a stream without holding its events.

Since the fold is a merge, each event can be folded as soon as it is read: the cache keeps the rows of the
objects folded lately (loaded once from the store), marks the ones a fold changed, and says when it is over
its bound (objects or estimated bytes). The caller then writes the changed rows (one write per object per
flush, conditional on the revision it loaded) and lets the cache drop the oldest clean ones. Memory is set
by the bound, not by the stream or the number of objects.

Pure: the caller does the loads and commits.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable

from processor.core.fold import ObjectFold, fold_object
from processor.core.merge import MergedState, MergeReducer
from processor.core.model import Admitted, ObjectKey, Row, Write

# What a cached row costs beside its largest event's body: the Row, its dicts, the cache's own entry.
ENTRY_OVERHEAD = 600


class _Entry:
    __slots__ = ("row", "stored", "dirty", "size")

    def __init__(self, row: Row | None):
        self.row = row
        self.stored = row.revision if row is not None else None  # the revision a write must replace
        self.dirty = False
        self.size = ENTRY_OVERHEAD


class StateCache:
    def __init__(self, max_objects: int, max_bytes: int):
        if max_objects < 1 or max_bytes < 1:
            raise ValueError("cache bounds must be positive")
        self.max_objects = max_objects
        self.max_bytes = max_bytes
        self._entries: OrderedDict[ObjectKey, _Entry] = OrderedDict()
        self._bytes = 0
        self._dirty = 0
        self._new: set[ObjectKey] = set()  # rows not in the store yet
        self._new_sorted: list[ObjectKey] | None = None

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        return self._bytes

    @property
    def dirty(self) -> int:
        return self._dirty

    def missing(self, keys: Iterable[ObjectKey]) -> list[ObjectKey]:
        """Of these objects, the ones whose rows must be loaded first."""
        entries = self._entries
        return [k for k in keys if k not in entries]

    def add_loaded(self, keys: Collection[ObjectKey], rows: dict[ObjectKey, Row]) -> None:
        """The store's rows for `keys` (absent = no row yet)."""
        for key in keys:
            if key not in self._entries:
                self._entries[key] = _Entry(rows.get(key))
                self._bytes += ENTRY_OVERHEAD

    def fold(
        self,
        key: ObjectKey,
        events: list[Admitted],
        now: str,
        refold: Callable[[list[Admitted], Row | None, str], ObjectFold] = fold_object,
    ) -> ObjectFold:
        """Fold one object's events (any order) into its cached row; the object must have been loaded.

        `refold` replaces the plain fold, e.g. to leave out events that make the state unstorable."""
        result = refold(events, self._entries[key].row, now)
        self.apply(key, result, max(ev.size for ev in events))
        return result

    def row(self, key: ObjectKey) -> Row | None:
        """The cached row of a loaded object (None: it has none yet)."""
        return self._entries[key].row

    def new_keys(self) -> list[ObjectKey]:
        """The objects whose rows exist only here so far (made since the last write), sorted: a store query
        finds every other row."""
        if self._new_sorted is None:
            self._new_sorted = sorted(self._new)
        return self._new_sorted

    def apply(self, key: ObjectKey, result: ObjectFold, event_size: int) -> None:
        """Keep a fold's new row (the object must have been loaded), sized by its largest event."""
        entry = self._entries[key]
        self._entries.move_to_end(key)
        if result.write is not None:
            if entry.stored is None and key not in self._new:
                self._new.add(key)
                self._new_sorted = None
            entry.row = result.write.row
            if not entry.dirty:
                entry.dirty = True
                self._dirty += 1
            size = ENTRY_OVERHEAD + event_size
            if size > entry.size:
                self._bytes += size - entry.size
                entry.size = size

    def over_bound(self) -> bool:
        return len(self._entries) > self.max_objects or self._bytes > self.max_bytes

    def writes(self) -> list[Write]:
        """One write per changed row, over the revision it was loaded at."""
        return [Write(_at_next(e), e.stored) for e in self._entries.values() if e.dirty and e.row is not None]

    def written(self, writes: Iterable[Write], conflicts: Collection[ObjectKey]) -> None:
        """After a commit: what was written is clean now; conflicting rows stay dirty for `rebase`."""
        for w in writes:
            key = w.row.key
            if key in conflicts:
                continue
            entry = self._entries.get(key)
            if entry is not None and entry.dirty:
                entry.row = w.row
                entry.stored = w.row.revision
                entry.dirty = False
                self._dirty -= 1
            if key in self._new:
                self._new.discard(key)
                self._new_sorted = None

    def rebase(self, stored: dict[ObjectKey, Row], reducer_of: Callable[[Row], MergeReducer], now: str) -> None:
        """Another writer changed these rows since they were loaded: join the cached state into theirs."""
        for key, theirs in stored.items():
            entry = self._entries.get(key)
            if entry is None or entry.row is None:
                continue
            ours = entry.row
            merged = MergedState(reducer_of(ours), theirs.state, theirs.provenance, theirs.order)
            merged.join_state(ours.state, ours.provenance, ours.order)
            if merged.reducer.finish is not None:
                merged.reducer.finish(merged.state)
            winner = ours if ours.order > theirs.order else theirs
            entry.row = Row(
                theirs.source,
                theirs.object,
                winner.event_type,
                winner.event_id,
                winner.sequencer,
                winner.etag,
                merged.state,
                now,
                merged.provenance_for(winner.order),
                theirs.revision,
            )
            entry.stored = theirs.revision

    def drop_clean(self, which: Callable[[Row], bool]) -> None:
        """Forget the clean rows `which` picks, and every object known to have no row (another writer may have
        made it since): they are loaded again, fresh, when next needed."""
        for key, entry in list(self._entries.items()):
            if not entry.dirty and (entry.row is None or which(entry.row)):
                del self._entries[key]
                self._bytes -= entry.size

    def evict(self) -> None:
        """Drop the oldest clean rows until the cache is at half its bounds (dirty ones are kept)."""
        entries = self._entries
        target_objects, target_bytes = self.max_objects // 2, self.max_bytes // 2
        for key in list(entries):
            if len(entries) <= target_objects and self._bytes <= target_bytes:
                break
            entry = entries[key]
            if not entry.dirty:
                del entries[key]
                self._bytes -= entry.size


def _at_next(entry: _Entry) -> Row:
    row = entry.row
    assert row is not None
    revision = (entry.stored or 0) + 1
    if row.revision == revision:
        return row
    return Row(
        row.source,
        row.object,
        row.event_type,
        row.event_id,
        row.sequencer,
        row.etag,
        row.state,
        row.updated_at,
        row.provenance,
        revision,
    )
