"""File ingest: message bodies, one per line, through the core into the store, in bounded memory.

No event is held until the end of the input: the fold is a merge, so events are folded as they are read,
a batch at a time, into a bounded cache of object rows (`StateCache`), which is written back when it is full
and at the end. The projection is the same as folding the stream in any order.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import AsyncIterable, AsyncIterator, Collection, Iterable, Iterator, Sequence
from typing import BinaryIO

from processor.admission import make_intake
from processor.config import Settings
from processor.core.cache import StateCache
from processor.core.intake import Intake
from processor.core.merge import MergeReducer
from processor.core.model import Admitted, DeadLetter, ObjectKey, Row, Tally
from processor.core.namespace import Effect
from processor.namespace_fold import CONTAINER_TYPE, container_key, fold_namespace, is_hierarchical, is_storage
from processor.namespace_fold import keys_beneath as in_range
from processor.projector import fold_storable, keys_beneath
from processor.stores.base import ProjectionStore, StoreError, utc_now

# A message to fold: (label, body, Event Grid's delivery kind or None[, the AMQP body section when not data]).
Message = tuple[str, bytes, str | None] | tuple[str, bytes, str | None, str | None]

# Events folded per round: one store load for the objects of a round that the cache does not hold, and an
# object's events within a round fold together (measured: 2,000 -> 20,000 halves the folds of a realistic stream).
FOLD_BATCH = 20000
DEAD_LETTER_BATCH = 1000
FREEZE_EVERY = 20_000
MAX_REBASES = 100
STORAGE_ROW_FACTOR = 3
ROW_GUESS = 600  # an object reached only by effects (a rename's destination): about one event's size


def read_lines(paths: Iterable[str]) -> Iterator[tuple[str, bytes]]:
    """(label, body) per non-blank line; '-' is standard input. Raises OSError for an unreadable file."""
    for path in paths:
        stream: BinaryIO = sys.stdin.buffer if path == "-" else open(path, "rb")
        name = "stdin" if path == "-" else path
        try:
            for lineno, line in enumerate(stream, 1):
                body = line.rstrip(b"\r\n")
                if body.strip():
                    yield f"{name}:{lineno}", body
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()


async def ingest(
    lines: Iterable[tuple[str, bytes]], settings: Settings, store: ProjectionStore, fold_batch: int = FOLD_BATCH
) -> Tally:
    """Message bodies as (label, body), folded into `store`; returns the outcomes."""
    return await ingest_messages(((label, body, None) for label, body in lines), settings, store, fold_batch)


async def ingest_messages(
    messages: Iterable[tuple[str, bytes, str | None]],
    settings: Settings,
    store: ProjectionStore,
    fold_batch: int = FOLD_BATCH,
) -> Tally:
    """`ingest` for messages as a hub delivered them: (label, body, Event Grid's delivery kind, the
    `aeg-event-type` property, or None). Event Hubs Capture's records (`processor.capture`) come this way."""
    return await ingest_batches(as_batches(messages), settings, store, fold_batch)


async def as_batches(
    messages: Iterable[tuple[str, bytes, str | None]],
) -> AsyncIterator[Iterable[tuple[str, bytes, str | None]]]:
    """Messages read here, for `ingest_batches`: one batch, read lazily as it is folded."""
    yield messages


async def ingest_batches(
    batches: AsyncIterable[Iterable[Message]],
    settings: Settings,
    store: ProjectionStore,
    fold_batch: int = FOLD_BATCH,
) -> Tally:
    """`ingest_messages` for messages that arrive in batches from elsewhere (feeder processes, say): the fold
    does not care where a batch ends, so any batching gives the same projection. A message may carry a fourth
    element, the AMQP body section when it is not a data section ("value", "sequence"): it is dead-lettered as
    such (`Intake.admit`'s `body_section`)."""
    intake = make_intake(settings)
    cache = StateCache(settings.ingest_cache_objects, settings.ingest_cache_bytes)
    streaming = _Streaming(store, intake, cache, fold_batch)
    # Cached rows are long-lived and hold no reference cycles: out of the cyclic collector's sight, it does
    # not rescan them at every collection (measured: ingest 2-3x faster). Refcounting still frees them.
    gc.freeze()
    try:
        count = 0
        async for batch in batches:
            for message in batch:
                # A branch on the length costs ~15 ns a message; star-unpacking would cost ~100.
                if len(message) == 3:
                    (label, body, kind), section = message, None
                else:
                    label, body, kind, section = message
                count += 1
                if count % FREEZE_EVERY == 0:
                    gc.freeze()
                admitted, bad = intake.admit(
                    body, streaming.tally, label=label, delivery_kind=kind, body_section=section
                )
                await streaming.add(admitted, bad)
        await streaming.finish()
    finally:
        gc.unfreeze()
    return streaming.tally


class _CachedRows:
    """The rows a namespace fold reads during file ingest: the cache's (loading what it lacks)."""

    def __init__(self, streaming: _Streaming):
        self.streaming = streaming

    async def rows(self, keys: Collection[ObjectKey]) -> dict[ObjectKey, Row]:
        cache = self.streaming.cache
        await self.streaming.load_into_cache(keys)
        return {k: row for k in keys if (row := cache.row(k)) is not None}

    async def beneath(self, source: str, directory: str) -> list[ObjectKey]:
        stored = await keys_beneath(self.streaming.store, source, directory)
        return sorted({*stored, *in_range(self.streaming.cache.new_keys(), (source, directory))})


class _Streaming:
    """Events in batches -> cached rows -> store writes when the cache is full and at the end."""

    def __init__(self, store: ProjectionStore, intake: Intake, cache: StateCache, fold_batch: int):
        self.store = store
        self.intake = intake
        self.fold_batch = fold_batch
        self.cache = cache
        self.tally = Tally()
        self._batch: dict[ObjectKey, list[Admitted]] = {}
        self._batched = 0
        self._dead: list[DeadLetter] = []

    async def add(self, admitted: list[Admitted], dead: list[DeadLetter]) -> None:
        batch = self._batch
        for ev in admitted:
            held = batch.get(ev.key)
            if held is None:
                batch[ev.key] = [ev]
            else:
                held.append(ev)
        self._batched += len(admitted)
        if dead:
            self._dead.extend(dead)
        if self._batched >= self.fold_batch:
            await self._fold()
        if len(self._dead) >= DEAD_LETTER_BATCH:
            await self._write()

    async def finish(self) -> None:
        await self._fold()
        await self._write()

    async def _fold(self) -> None:
        batch, self._batch, self._batched = self._batch, {}, 0
        if not batch:
            return
        cache, tally, now = self.cache, self.tally, utc_now()
        missing = cache.missing(batch)
        if missing:
            cache.add_loaded(missing, await self.store.load(missing))
        storage = {k: v for k, v in batch.items() if is_storage(v[0].reducer)}
        if storage:
            # Renames and directory operations reach objects beyond their own, through the cache.
            folds = await fold_namespace(storage, _CachedRows(self), now, self._fold_with_effects)
            for key, result in folds.items():
                events = storage.get(key, [])
                # A storage row holds its own fields, its timeline and what is derived from both: about three
                # times an event's worth (measured: peak RSS 342 MB, 153 before namespaces, counted as one).
                cache.apply(key, result, STORAGE_ROW_FACTOR * max((ev.size for ev in events), default=ROW_GUESS))
                for outcome, etype in result.outcomes:
                    tally.add(outcome, etype)
        for key, events in batch.items():
            if key in storage:
                continue
            result = cache.fold(key, events, now, refold=self._fold_storable)
            for outcome, etype in result.outcomes:
                tally.add(outcome, etype)
        if cache.over_bound():
            await self._write()
            cache.evict()

    def _fold_storable(self, events: list[Admitted], current: Row | None, now: str):
        result, bad = fold_storable(events, current, now)
        self._dead.extend(bad)
        return result

    def _fold_with_effects(self, events: list[Admitted], current: Row | None, now: str, effects: Sequence[Effect]):
        # A namespace fold refolds an object each time it learns a new effect: keep only the last fold's dead
        # letters (each fold starts from the same cached row).
        result, bad = fold_storable(events, current, now, effects)
        self._dead.extend(b for b in bad if b not in self._dead)
        return result

    async def _write(self) -> None:
        """Write every changed row (and the dead letters), rebasing rows another writer changed meanwhile."""
        cache, dead = self.cache, self._dead
        self._dead = []
        for _ in range(MAX_REBASES):
            writes = cache.writes()
            if not writes and not dead:
                return
            conflicts = await self.store.commit(writes, dead)
            dead = []
            cache.written(writes, conflicts)
            if not conflicts:
                return
            cache.rebase(await self.store.load(list(conflicts)), self._reducer_of, utc_now())
            storage = {w.row.key for w in writes if is_storage(self._reducer_of(w.row))}
            # Another writer folded in a namespace this flush wrote in: its container's row conflicted. Only in a
            # hierarchical container (as it stands now, joined) can one writer's directory event reach the
            # other's objects; in a flat one, and for any other object both folded, the rebase settles it all.
            containers = {container_key(k) or k for k in storage & conflicts}  # (a container's own row: k)
            await self.load_into_cache(containers)
            hierarchical = {c for c in containers if is_hierarchical(cache.row(c))}
            if hierarchical:
                await self._respread({k for k in storage if (container_key(k) or k) in hierarchical})
        raise StoreError(f"compare-and-set kept failing for {cache.dirty} objects after {MAX_REBASES} rounds")

    async def _respread(self, written: set[ObjectKey]) -> None:
        """Another writer committed beneath a container this flush wrote in: recompute the effects of what
        this flush wrote against the rows as they stand now (clean cached storage rows are reloaded)."""
        cache = self.cache
        cache.drop_clean(lambda row: is_storage(self._reducer_of(row)))
        reducer = self.intake.reducers["blob"]
        folds = await fold_namespace({}, _CachedRows(self), utc_now(), self._fold_with_effects, reducer, written)
        for key, result in folds.items():
            cache.apply(key, result, STORAGE_ROW_FACTOR * ROW_GUESS)

    async def load_into_cache(self, keys: Collection[ObjectKey]) -> None:
        missing = self.cache.missing(keys)
        if missing:
            self.cache.add_loaded(missing, await self.store.load(missing))

    def _reducer_of(self, row: Row) -> MergeReducer:
        if row.event_type == CONTAINER_TYPE:
            return self.intake.reducers["blob"]
        entry = self.intake.catalog.by_type.get(row.event_type)
        return self.intake.reducers[entry.reducer if entry is not None else "replace"]
