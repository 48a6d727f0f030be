"""The apply loop releases each event when its window ends, even after sleeping on an empty buffer."""

import asyncio
import time
from dataclasses import replace

from processor.config import Settings
from processor.hub.wire import Delivery
from processor.stores.sqlite import SqliteStore
from processor.worker.worker import Worker
from tests.builders import body, model_event


async def test_an_event_arriving_while_the_loop_sleeps_on_an_empty_buffer_is_applied_after_its_window(tmp_path):
    # The checkpoint interval (how long the loop sleeps with nothing held) is far longer than the window.
    settings = replace(Settings(), reorder_window=0.1, checkpoint_every_seconds=30.0)
    store = SqliteStore(f"sqlite:///{tmp_path}/p.sqlite")
    await store.open()
    worker = Worker(settings, store, None, "ns", "events", "$Default")
    loop = asyncio.create_task(worker.run())
    try:
        await asyncio.sleep(0)  # the loop is now asleep on an empty buffer
        worker.open_partition("0")
        sent = time.monotonic()
        await worker.receive("0", [Delivery(0, "0", body(model_event("m", 1)), None, None, None)])
        while worker.tally.count("applied") == 0:
            assert time.monotonic() - sent < 5, "the event waited for the checkpoint interval, not its window"
            await asyncio.sleep(0.01)
        assert worker.partitions["0"].progress.safe == (0, "0")
    finally:
        loop.cancel()
        await store.close()


def delivery(seq: int, event: dict) -> Delivery:
    return Delivery(seq, str(seq), body(event), None, None, None)


async def make_worker(tmp_path, **changes):
    settings = replace(Settings(), reorder_window=0.05, checkpoint_every_seconds=30.0, **changes)
    store = SqliteStore(f"sqlite:///{tmp_path}/p.sqlite")
    await store.open()
    return Worker(settings, store, None, "ns", "events", "$Default"), store


async def test_a_copy_of_an_event_from_another_partition_finishes_its_own_message(tmp_path):
    worker, store = await make_worker(tmp_path)
    try:
        event = model_event("m", 1)
        worker.open_partition("0")
        worker.open_partition("1")
        await worker.receive("0", [delivery(0, event)])
        await worker.receive("1", [delivery(7, event)])  # Event Grid delivered it twice, over two partitions
        worker.close_partition("0", lost=True)  # partition 0's copy is dropped for its next owner
        await worker.flush(drain=True)
        # Partition 1 may checkpoint its message only because its own copy was applied.
        assert worker.partitions["1"].progress.safe == (7, "7")
        assert [r.event_id async for r in store.export()] == [event["id"]]
    finally:
        await store.close()


async def test_a_partition_opened_again_without_a_close_drops_what_its_old_ownership_held(tmp_path):
    worker, store = await make_worker(tmp_path)
    try:
        worker.open_partition("0")
        await worker.receive("0", [delivery(0, model_event("m", 1))])
        worker.open_partition("0")
        assert len(worker.buffer) == 0
    finally:
        await store.close()


async def test_the_shutdown_drain_waits_for_a_commit_in_flight_so_no_event_is_overtaken(tmp_path):
    worker, store = await make_worker(tmp_path)
    first, second = model_event("m", 1), model_event("m", 2)
    in_commit, release_commit = asyncio.Event(), asyncio.Event()
    original = store.commit

    async def slow_first_commit(writes, dead):
        if not in_commit.is_set():
            in_commit.set()
            await release_commit.wait()  # the apply loop's commit of `first` is in flight
        return await original(writes, dead)

    store.commit = slow_first_commit
    try:
        worker.open_partition("0")
        await worker.receive("0", [delivery(0, first)])
        loop = asyncio.create_task(worker.flush(drain=True))  # as the apply loop would, holding `first`
        await in_commit.wait()
        await worker.receive("0", [delivery(1, second)])
        shutdown = asyncio.create_task(worker.shutdown(10))
        for _ in range(50):  # zero-time turns of the loop: let the shutdown get as far as it can (no wall clock)
            await asyncio.sleep(0)
        release_commit.set()
        await loop
        assert await shutdown
        assert worker.tally.count("applied") == 2 and worker.tally.count("stale") == 0
        assert worker.partitions["0"].progress.safe == (1, "1")
    finally:
        await store.close()
