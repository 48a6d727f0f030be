"""The running worker, wired: the feeder (the SDK consumer, in a child process), the apply loop, the
checkpointer, the watches over the hub, and graceful shutdown.

`run_worker` is what `processor run` (and the demo, replay and the end-to-end tests) call. It returns when
`stop` is set, after committing what it holds, checkpointing and releasing its partitions. Each part is a
task of its own; one that ends on its own (an error) stops the worker rather than leaving it half alive.

Imports the hub's adapters, the stores, and the worker's parts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from processor.config import Settings
from processor.hub.checkpoints import close_checkpoint_store, open_checkpoint_store
from processor.hub.clients import consumer_client, hub_name, namespace
from processor.stores.base import ProjectionStore
from processor.stores.registry import open_store
from processor.tracing import flush_tracing, start_tracing
from processor.worker.feed import Feed
from processor.worker.history import History
from processor.worker.missing import HubNotFound
from processor.worker.retry import Streak
from processor.worker.watches import MissingWatch, StallWatch
from processor.worker.worker import Worker

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

__all__ = ["HubNotFound", "WorkerOptions", "run_worker"]

FEEDER_STOP_TIMEOUT = 10.0


@dataclass
class WorkerOptions:
    """What the command line or a test changes on top of the settings."""

    consumer_group: str | None = None
    stall_check_interval: float = 30.0
    not_found_report_interval: float = 60.0  # the ERROR while the hub or consumer group is missing, repeated
    on_started: Callable[[Worker], Awaitable[None] | None] | None = None
    store: ProjectionStore | None = None  # an open store to use instead of opening settings.store_url
    tracer_provider: TracerProvider | None = None  # spans of the commits go here instead of the settings' exporter
    history_interval: float = 10.0  # seconds between the dashboard's samples (an hour of them is kept)


async def run_worker(settings: Settings, stop: asyncio.Event, options: WorkerOptions | None = None) -> Worker:
    options = options or WorkerOptions()
    own_store = options.store is None
    store = options.store or open_store(settings.store_url, settings.feed_retention(), settings.object_history())
    if own_store:
        await store.open()
    checkpoints = await open_checkpoint_store(settings)
    group = options.consumer_group or settings.consumer_group
    worker = Worker(settings, store, checkpoints, namespace(settings), hub_name(settings), group)
    tracing = options.tracer_provider or start_tracing(settings)
    if tracing is not None:
        from processor.worker.commit_spans import CommitSpans

        worker.spans = CommitSpans(tracing.get_tracer("processor.worker"), hub_name(settings))
    # Partition properties (the stall watch) come from a client of our own; receiving is the feeder's.
    client = consumer_client(settings, consumer_group=group)
    worker.history = History(options.history_interval)
    receive_errors = Streak("receiving")
    missing = MissingWatch(worker, settings, group, options.not_found_report_interval)
    stalls = StallWatch(worker, client, options.stall_check_interval, receive_errors)
    feed = await Feed.start(settings, group, worker, missing, receive_errors)

    consuming = asyncio.create_task(feed.consume(), name="consume")
    applying = asyncio.create_task(worker.run(), name="apply")
    checkpointing = asyncio.create_task(worker.checkpointer.run(), name="checkpoints")
    watching_stalls = asyncio.create_task(stalls.run(), name="stalls")
    watching_missing = asyncio.create_task(missing.run(), name="missing")
    sampling = asyncio.create_task(worker.history.run(worker), name="history")
    parts = [consuming, applying, checkpointing, watching_stalls, watching_missing, sampling]
    try:
        if options.on_started:
            maybe = options.on_started(worker)
            if asyncio.iscoroutine(maybe):
                await maybe
        stopper = asyncio.create_task(stop.wait())
        # Every part is watched: one that ends on its own (an exception) stops the worker rather than leaving
        # it half alive (receiving without checkpointing, say).
        done, _ = await asyncio.wait([stopper, *parts], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        for task in done:
            if task is not stopper and (error := task.exception()) is not None:
                raise error
    finally:
        feed.stopping = True
        # Order matters: commit and checkpoint while the feeder still owns the partitions, then let it
        # release them. The apply loop may be mid-commit while the drain commits the rest: two folds of one
        # object are safe, the store's compare-and-set makes the later one fold again from the other's row.
        watching_stalls.cancel()
        checkpointing.cancel()  # the shutdown writes the last checkpoints itself
        watching_missing.cancel()
        sampling.cancel()
        await worker.shutdown(settings.shutdown_timeout)
        applying.cancel()
        await feed.stop()
        try:
            # Releasing takes the SDK a second or two; bounded apart, so that the whole shutdown stays within
            # the shutdown bound plus this, under the pod's termination grace period.
            await asyncio.wait_for(asyncio.shield(consuming), FEEDER_STOP_TIMEOUT)
        except BaseException:  # a feeder that does not stop in time is ended; its ownership then expires
            feed.kill()
        for task in parts:
            task.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await task
        with suppress(Exception):
            await client.close()
        await close_checkpoint_store(checkpoints)
        if own_store:
            await store.close()
        flush_tracing(tracing)
    return worker
