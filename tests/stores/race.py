"""The race between replicas: one realistic stream, admitted once, then replayed by many writers at once.

Every writer gets a random subset of the objects in a random order and random batches, each object either
with all its events or with a prefix of them (sorted, deduplicated, as the reorder buffer releases them),
and a random share of the dead letters. Every object goes in full to at least one writer. Since a fold over
a prefix's row continues exactly where the prefix stopped, the final projection must equal ingesting the
stream once, whoever won which race, as long as no write is ever based on a row that was replaced.

Shared by the test (asyncio tasks) and `race_writer.py` (the same plan run from other processes).
"""

from __future__ import annotations

import random

from processor.admission import make_intake
from processor.config import Settings
from processor.core.model import Admitted, DeadLetter, ObjectKey, Tally
from processor.core.reorder import Released
from processor.projector import Projector
from processor.sim.traffic import deliver, lifecycle
from processor.stores.base import ProjectionStore

_MODEL = (
    '[{"id":"bad-%d","topic":"/subscriptions/x/workspaces/w","subject":"models/","eventType":'
    '"Microsoft.MachineLearningServices.ModelRegistered","eventTime":"2026-11-01T00:00:00Z","data":{}}]'
)
# Unique bodies, so each has one fingerprint and one label (origin) in every run.
MALFORMED = [b"not json {%d" % i for i in range(6)] + [(_MODEL % i).encode() for i in range(6)]


class Stream:
    def __init__(self, n_events: int, seed: int):
        self.bodies = [m.body for m in deliver(lifecycle(n_events, seed=seed), seed=seed + 1)]
        self.bodies[len(self.bodies) // 2 : len(self.bodies) // 2] = MALFORMED
        self.labels = [f"l{i}" for i in range(len(self.bodies))]
        intake = make_intake(Settings())
        tally = Tally()
        held: dict[ObjectKey, dict[str, Admitted]] = {}
        self.dead: list[DeadLetter] = []
        for label, body in zip(self.labels, self.bodies):
            admitted, bad = intake.admit(body, tally, label=label)
            for ev in admitted:
                held.setdefault(ev.key, {}).setdefault(ev.order[1], ev)  # redeliveries: the first copy
            self.dead.extend(bad)
        self.events: dict[ObjectKey, list[Admitted]] = {
            key: sorted(by_id.values(), key=lambda e: e.order) for key, by_id in sorted(held.items())
        }

    def lines(self) -> list[tuple[str, bytes]]:
        return list(zip(self.labels, self.bodies))

    def plan(self, seed: int, writer: int, writers: int) -> list[tuple[Released, list[DeadLetter]]]:
        rng = random.Random(f"race/{seed}/{writer}")
        tasks: list[tuple[ObjectKey, int]] = []
        for i, (key, events) in enumerate(self.events.items()):
            if i % writers == writer:
                tasks.append((key, len(events)))  # its owner: everything
            elif rng.random() < 0.5:
                tasks.append((key, len(events) if rng.random() < 0.5 else rng.randint(1, len(events))))
            if rng.random() < 0.2:
                tasks.append((key, rng.randint(1, len(events))))  # a second, partial pass
        rng.shuffle(tasks)
        batches: list[tuple[Released, list[DeadLetter]]] = []
        i = 0
        while i < len(tasks):
            size = rng.randint(1, 60)
            released: Released = {}
            for key, length in tasks[i : i + size]:
                length = max(length, len(released.get(key, ())))
                released[key] = self.events[key][:length]
            batches.append((released, []))
            i += size
        for n, d in enumerate(self.dead):
            if n % writers == writer or rng.random() < 0.5:
                batches[rng.randrange(len(batches))][1].append(d)
        return batches


async def write(store: ProjectionStore, plan: list[tuple[Released, list[DeadLetter]]]) -> dict[str, int]:
    """Apply the plan; returns the tally and how many compare-and-set conflicts were redone."""
    conflicts = 0
    commit = store.commit

    async def counting_commit(writes, dead_letters):
        nonlocal conflicts
        failed = await commit(writes, dead_letters)
        conflicts += len(failed)
        return failed

    store.commit = counting_commit  # type: ignore[method-assign]  # counts, changes nothing
    tally = Tally()
    projector = Projector(store, tally)
    try:
        for released, dead in plan:
            await projector.apply(released, dead)
    finally:
        del store.commit
    return {**tally.summary(), "conflicts": conflicts}
