"""The change feed and object history as the live worker writes them: the real SDK against the local hub."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from processor.hub.checkpoints import SqliteCheckpointStore
from processor.hub.clients import producer_client
from processor.sim.traffic import deliver, lifecycle
from processor.stores.feed import ChangeQuery
from processor.stores.registry import open_store
from processor.worker.app import run_worker
from processor.worker.simulate import publish
from tests.worker.helpers import checkpoints_at_end, until, worker_settings


async def test_the_worker_feed_replays_to_its_projection_and_history_names_each_events_message(devhub, tmp_path):
    messages = list(deliver(lifecycle(800, seed=31), seed=32))
    settings = replace(worker_settings(devhub, tmp_path), history_per_object=1000, reorder_window=0.2)
    async with producer_client(settings) as producer:
        await publish(producer, messages)
    stop = asyncio.Event()
    live = asyncio.create_task(run_worker(settings, stop))
    checkpoints = SqliteCheckpointStore(settings.checkpoint_url)
    try:
        await until(lambda: checkpoints_at_end(checkpoints, settings, devhub, 4), 60, "the worker to catch up")
    finally:
        stop.set()
        await live
        await checkpoints.close()

    store = open_store(settings.store_url)
    await store.open()
    try:
        page = await store.changes(ChangeQuery(limit=100_000))
        rows = [r async for r in store.export()]
        histories = {r.key: await store.object_history(r.source, r.object, 1000) for r in rows}
    finally:
        await store.close()
    assert [c.position for c in page.changes] == list(range(1, page.head + 1))
    last = {(c.source, c.object): c for c in page.changes}
    # State and event, not the revision: a write that changes neither (a storage container's row, written by
    # every batch beneath it) moves the revision and is no change.
    assert {k: (c.event_id, c.state) for k, c in last.items()} == {r.key: (r.event_id, r.state) for r in rows}
    assert len(page.changes) > len(rows)  # objects changed more than once
    kept = [e for entries in histories.values() for e in entries]
    assert kept and all(e.partition in {"0", "1", "2", "3"} and e.sequence_number is not None for e in kept)
    assert {e.outcome for e in kept} <= {"applied", "stale"}
    for row in rows:  # an object's event was applied once, and that is in its history
        if row.sequencer:  # not a row only a rename or a container touch made
            assert row.event_id in {e.event_id for e in histories[row.key] if e.outcome == "applied"}, row.key
