"""The running worker: the SDK consumer, the apply loop, the stall watchdog and graceful shutdown, wired.

`run_worker` is what `processor run` (and the demo, and the end-to-end tests) call. It returns when `stop`
is set, after committing what it holds, checkpointing and releasing its partitions.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from azure.eventhub import CloseReason

from processor.config import Settings
from processor.hub.checkpoints import close_checkpoint_store, open_checkpoint_store
from processor.hub.clients import consumer_client, hub_name, namespace, starting_position
from processor.stores.base import ProjectionStore, open_store
from processor.worker.worker import Streak, Worker

log = logging.getLogger(__name__)


@dataclass
class WorkerOptions:
    """What the command line or a test changes on top of the settings."""

    checkpoint_store: Any = None  # a ready CheckpointStore instead of the configured one (replay: in memory)
    consumer_group: str | None = None
    stall_check_interval: float = 30.0
    owner_id_hint: str = ""
    on_started: Callable[[Worker], Awaitable[None] | None] | None = None
    store: ProjectionStore | None = None  # an open store to use instead of opening settings.store_url
    extra: dict = field(default_factory=dict)


async def run_worker(settings: Settings, stop: asyncio.Event, options: WorkerOptions | None = None) -> Worker:
    options = options or WorkerOptions()
    own_store = options.store is None
    store = options.store or open_store(settings.store_url)
    if own_store:
        await store.open()
    checkpoints = options.checkpoint_store or await open_checkpoint_store(settings)
    group = options.consumer_group or settings.consumer_group
    worker = Worker(settings, store, checkpoints, namespace(settings), hub_name(settings), group)
    client = consumer_client(settings, checkpoints, group)
    receive_errors = Streak("receiving")

    async def on_batch(context: Any, events: list) -> None:
        props = context.last_enqueued_event_properties or {}
        await worker.receive(context.partition_id, events, props.get("sequence_number"))

    async def on_open(context: Any) -> None:
        worker.open_partition(context.partition_id)

    async def on_close(context: Any, reason: CloseReason) -> None:
        worker.close_partition(context.partition_id, lost=reason == CloseReason.OWNERSHIP_LOST)

    async def on_error(context: Any, error: Exception) -> None:
        where = f"partition {context.partition_id}" if context is not None else "load balancing"
        receive_errors.failed(RuntimeError(f"{where}: {error!r}"))

    async def consume() -> None:
        worker.consumer_alive = True
        try:
            await _receive()
        finally:
            worker.consumer_alive = False

    async def _receive() -> None:
        await client.receive_batch(
            on_batch,
            max_batch_size=settings.prefetch,
            prefetch=settings.prefetch,
            starting_position=starting_position(settings),
            track_last_enqueued_event_properties=True,
            on_partition_initialize=on_open,
            on_partition_close=on_close,
            on_error=on_error,
        )

    async def watch_stalls() -> None:
        """A partition that receives nothing while the hub holds newer events is reported, not silently stuck."""
        while True:
            await asyncio.sleep(options.stall_check_interval)
            for partition_id, state in list(worker.partitions.items()):
                try:
                    props = await client.get_partition_properties(partition_id)
                except Exception as exc:  # reported by the receive streak as well; nothing to decide here
                    log.debug("partition properties of %s unavailable: %r", partition_id, exc)
                    continue
                state.last_enqueued = props["last_enqueued_sequence_number"]
                received = state.progress.last_received if state.progress.last_received is not None else -1
                idle = time.monotonic() - (state.last_received_at or state.opened_at)
                if props["last_enqueued_sequence_number"] > received and idle > options.stall_check_interval:
                    if not state.stalled:
                        log.warning("partition %s is stalled: the hub has sequence number %d, the last received "
                                    "is %d, nothing received for %.0fs", partition_id,
                                    props["last_enqueued_sequence_number"], received, idle)
                    state.stalled = True
                elif received >= 0:
                    receive_errors.succeeded()

    tasks = [asyncio.create_task(consume(), name="consume"), asyncio.create_task(worker.run(), name="apply"),
             asyncio.create_task(watch_stalls(), name="stalls"),
             asyncio.create_task(worker.run_checkpoints(), name="checkpoints")]
    worker.client = client  # for `status`-like reads by the HTTP layer
    try:
        if options.on_started:
            maybe = options.on_started(worker)
            if asyncio.iscoroutine(maybe):
                await maybe
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopper, *tasks[:2]], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        for task in done:
            if task is not stopper and task.exception() is not None:
                raise task.exception()
    finally:
        # Order matters: commit and checkpoint while we still own the partitions, then let the SDK release them.
        tasks[2].cancel()
        tasks[3].cancel()  # the shutdown writes the last checkpoints itself
        # The apply loop may be mid-commit while the drain commits the rest: two folds of one object are safe,
        # the store's compare-and-set makes the later one fold again from the earlier one's row.
        await worker.shutdown(settings.shutdown_timeout)
        tasks[1].cancel()
        with suppress(Exception):
            await asyncio.wait_for(client.close(), settings.shutdown_timeout)
        tasks[0].cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError, Exception):
                await task
        if not options.checkpoint_store:
            await close_checkpoint_store(checkpoints)
        if own_store:
            await store.close()
    return worker


def install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
