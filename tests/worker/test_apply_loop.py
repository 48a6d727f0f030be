"""The apply loop releases each event when its window ends, even after sleeping on an empty buffer."""

import asyncio
import time
from dataclasses import replace

from processor.config import Settings
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
        await worker.receive("0", [(0, "0", body(model_event("m", 1)), None, None)])
        while worker.tally.count("applied") == 0:
            assert time.monotonic() - sent < 5, "the event waited for the checkpoint interval, not its window"
            await asyncio.sleep(0.01)
        assert worker.partitions["0"].progress.safe == (0, "0")
    finally:
        loop.cancel()
        await store.close()
