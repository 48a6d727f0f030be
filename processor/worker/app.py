"""The running worker: the feeder (the SDK consumer, in a child process), the apply loop, checkpoints, the
stall watchdog and graceful shutdown, wired.

`run_worker` is what `processor run` (and the demo, and the end-to-end tests) call. It returns when `stop`
is set, after committing what it holds, checkpointing and releasing its partitions.
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import sys
import time
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import msgspec

from processor.config import Settings
from processor.hub.checkpoints import close_checkpoint_store, open_checkpoint_store
from processor.hub.clients import consumer_client, hub_name, missing_consumer_group, missing_hub, namespace
from processor.hub.feeder import ENV as FEEDER_ENV, settings_to_env
from processor.stores.base import ProjectionStore
from processor.stores.registry import open_store
from processor.worker.missing import HubNotFound, Missing
from processor.worker.worker import Streak, Worker

__all__ = ["HubNotFound", "WorkerOptions", "run_worker"]

log = logging.getLogger(__name__)
FEEDER_STOP_TIMEOUT = 10.0


@dataclass
class WorkerOptions:
    """What the command line or a test changes on top of the settings."""

    consumer_group: str | None = None
    stall_check_interval: float = 30.0
    not_found_report_interval: float = 60.0  # the ERROR while the hub or consumer group is missing, repeated
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
    checkpoints = await open_checkpoint_store(settings)
    group = options.consumer_group or settings.consumer_group
    worker = Worker(settings, store, checkpoints, namespace(settings), hub_name(settings), group)
    # Partition properties (stall watch, status) come from a client of our own; receiving is the feeder's.
    client = consumer_client(settings, consumer_group=group)
    worker.client = client
    receive_errors = Streak("receiving")
    # An attach the service refuses takes the SDK a few seconds of its own retries: a partition open for longer
    # than this without a not-found has found its consumer group.
    missing = Missing(settings.not_found_timeout, quiet=max(30.0, 3 * settings.load_balancing_interval),
                      report_every=options.not_found_report_interval)
    missing_seen = asyncio.Event()
    feeder = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "processor.hub.feeder", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, FEEDER_ENV: settings_to_env(settings, group)},
        start_new_session=True,  # a Ctrl-C reaches us; we tell the feeder when to stop
    )
    stopping = False

    async def consume() -> None:
        """Apply the feeder's frames in order until it ends."""
        decode = msgspec.msgpack.Decoder().decode
        worker.consumer_alive = True
        try:
            while True:
                try:
                    header = await feeder.stdout.readexactly(4)
                    frame = decode(await feeder.stdout.readexactly(struct.unpack(">I", header)[0]))
                except asyncio.IncompleteReadError:
                    break
                kind = frame[0]
                if kind == "batch":
                    if missing.active:
                        missing.received()
                        worker.consumer_alive = True
                    await worker.receive(frame[1], frame[3], frame[2])
                elif kind == "open":
                    missing.opened(frame[1], time.monotonic())
                    worker.open_partition(frame[1])
                elif kind == "close":
                    missing.closed(frame[1])
                    worker.close_partition(frame[1], lost=frame[2])
                elif kind == "error" and frame[2] is not None:
                    line = missing_hub(settings) if frame[2] == "hub" else missing_consumer_group(settings, group)
                    missing.failed(line, frame[3], time.monotonic())
                    worker.consumer_alive = False  # unready: nothing can be consumed until someone creates it
                    missing_seen.set()
                elif kind == "error":
                    receive_errors.failed(RuntimeError(frame[1]))
        finally:
            worker.consumer_alive = False
        code = await feeder.wait()
        if not stopping:
            raise RuntimeError(f"the feeder process (the Event Hubs consumer) exited with code {code}")

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

    async def watch_missing() -> None:
        """While the hub or consumer group is missing: unready, an ERROR now and then, HubNotFound at the timeout."""
        while True:
            await missing_seen.wait()
            now = time.monotonic()
            if missing.settled(now):
                log.warning("a partition has stayed open for %.0fs: what was missing exists now; ready again",
                            missing.quiet)
                worker.consumer_alive = True
            if not missing.active:
                missing_seen.clear()
                continue
            missing.check(now)
            if missing.report_due(now):
                log.error("%s; not ready, retrying; exits in %.0fs (PROCESSOR_NOT_FOUND_TIMEOUT) unless it appears",
                          missing.line, missing.remaining(now))
            await asyncio.sleep(min(1.0, max(0.01, missing.remaining(now)), missing.report_every))

    tasks = [asyncio.create_task(consume(), name="consume"), asyncio.create_task(worker.run(), name="apply"),
             asyncio.create_task(watch_stalls(), name="stalls"),
             asyncio.create_task(worker.run_checkpoints(), name="checkpoints"),
             asyncio.create_task(watch_missing(), name="missing")]
    try:
        if options.on_started:
            maybe = options.on_started(worker)
            if asyncio.iscoroutine(maybe):
                await maybe
        stopper = asyncio.create_task(stop.wait())
        # Every task is watched: one that ends on its own (an exception) stops the worker rather than leaving
        # it half alive (receiving without checkpointing, say).
        done, _ = await asyncio.wait([stopper, *tasks], return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        for task in done:
            if task is not stopper and task.exception() is not None:
                raise task.exception()
    finally:
        stopping = True
        # Order matters: commit and checkpoint while the feeder still owns the partitions, then let it
        # release them. The apply loop may be mid-commit while the drain commits the rest: two folds of one
        # object are safe, the store's compare-and-set makes the later one fold again from the other's row.
        tasks[2].cancel()
        tasks[3].cancel()  # the shutdown writes the last checkpoints itself
        tasks[4].cancel()
        await worker.shutdown(settings.shutdown_timeout)
        tasks[1].cancel()
        with suppress(Exception):
            feeder.stdin.write(b"stop\n")
            await feeder.stdin.drain()
        try:
            # Releasing takes the SDK a second or two; bounded apart, so that the whole shutdown stays within
            # the shutdown bound plus this, under the pod's termination grace period.
            await asyncio.wait_for(asyncio.shield(tasks[0]), FEEDER_STOP_TIMEOUT)
        except BaseException:  # a feeder that does not stop in time is ended; its ownership then expires
            with suppress(ProcessLookupError):
                feeder.kill()
        for task in tasks:
            task.cancel()
            with suppress(asyncio.CancelledError, Exception):
                await task
        with suppress(Exception):
            await client.close()
        await close_checkpoint_store(checkpoints)
        if own_store:
            await store.close()
    return worker

