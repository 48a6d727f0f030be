"""Projector: released events -> fold -> one store transaction, redoing the fold where another writer won.

This is the seam between the pure core and the stores, shared by file ingest and the Event Hubs worker.
"""

from __future__ import annotations

from typing import Callable

from processor.core.fold import fold_batch
from processor.core.model import DeadLetter, ObjectKey, Tally
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
            folds = fold_batch(todo, rows, now)
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
