"""Object history on both stores (the `store` fixture): which events made an object's state, written by the real
projector from events admitted by the real intake."""

from __future__ import annotations

from processor.admission import make_intake
from processor.config import Settings
from processor.core.model import Admitted, Origin, Tally, Write
from processor.projector import Projector
from processor.stores.feed import FeedRetention
from processor.stores.history import HistoryRetention
from tests.builders import body, run_event
from tests.stores.test_contract import row

INTAKE = make_intake(Settings())


def admitted(event: dict, sequence_number: int, partition: str = "1") -> Admitted:
    (ev,), bad = INTAKE.admit(body(event), Tally(), origin=Origin("events", partition, 1, sequence_number, None))
    assert not bad
    return ev


def run(status: str, second: int, sequence_number: int, **kw) -> Admitted:
    return admitted(run_event("r1", status, f"2026-11-01T00:00:{second:02d}Z", **kw), sequence_number)


async def apply(store, *events: Admitted) -> None:
    await Projector(store, Tally()).apply({events[0].key: list(events)}, [])


def seen(entries) -> list[tuple]:
    return [(e.event_id, e.outcome, e.partition, e.sequence_number) for e in entries]


async def test_history_is_off_unless_set(store):
    queued = run("Queued", 1, 10, id="q")
    await apply(store, queued)
    assert await store.object_history(*queued.key) == []


async def test_applied_and_stale_events_are_kept_once_each_with_their_message_newest_first(store):
    store.history = HistoryRetention(per_object=100, max_age=0)
    queued, running = run("Queued", 1, 10, id="q"), run("Running", 2, 11, id="r")
    await apply(store, running, queued)
    # A late event that orders before the object's (stale, still joined: a status reached earlier), a newer one,
    # and the first one again (a redelivery: a duplicate of nothing stored, so stale, but kept once only).
    starting, completed = run("Starting", 1, 12, id="s"), run("Completed", 4, 13, id="c")
    await apply(store, completed, starting, run("Queued", 1, 14, id="q"))
    key = queued.key
    entries = await store.object_history(key[0].upper(), key[1])  # the source as any case, like /api/objects
    assert seen(entries) == [
        ("c", "applied", "1", 13),
        ("s", "stale", "1", 12),
        ("r", "applied", "1", 11),
        ("q", "applied", "1", 10),
    ]
    first = entries[-1]
    assert (first.event_type.endswith("RunStatusChanged"), first.time[:19]) == (True, "2026-11-01T00:00:01")
    assert first.sequencer and first.recorded_at.endswith("Z")
    assert entries[0].to_json()["outcome"] == "applied"
    assert await store.object_history(key[0], key[1], limit=2) == entries[:2]
    assert await store.object_history(key[0], "runs/other") == []


async def test_each_object_keeps_its_newest_events_only(store):
    store.history = HistoryRetention(per_object=3, max_age=0)
    for n, status in enumerate(["Queued", "Preparing", "Running", "Finalizing", "Completed"]):
        await apply(store, run(status, n + 1, n, id=f"e{n}"))
    key = run("Queued", 1, 0).key
    assert [e.event_id for e in await store.object_history(*key)] == ["e4", "e3", "e2"]


async def test_a_write_that_loses_its_compare_and_set_keeps_no_history(store):
    store.history = HistoryRetention(per_object=100, max_age=0)
    queued = run("Queued", 1, 10, id="q")
    await apply(store, queued)
    late = run("Running", 2, 11, id="r")
    stale_row = row(queued.key[1], source=queued.key[0])
    assert await store.commit([Write(stale_row, 99, (("applied", late),))], []) == {queued.key}
    assert seen(await store.object_history(*queued.key)) == [("q", "applied", "1", 10)]


async def test_kept_events_older_than_the_history_age_are_pruned(backend, store):
    store.history = HistoryRetention(per_object=100, max_age=3600)
    await apply(store, run("Queued", 1, 10, id="q"), run("Running", 2, 11, id="r"))
    await backend.sql("UPDATE history SET recorded_at = '2020-01-01T00:00:00.000Z' WHERE event_id = 'q'")
    await store.prune_changes(FeedRetention(max_changes=0, max_age=0))
    key = run("Queued", 1, 0).key
    assert [e.event_id for e in await store.object_history(*key)] == ["r"]
