"""Parallel hub replay: several feeder processes read fixed, disjoint shares of the partitions, and this process
folds what they forward through the streaming ingest (`processor.ingest.ingest_batches`).

Why: the SDK consumer costs as much CPU per event as the whole fold, and one consumer process tops out well below
what the fold can take (measured: ~13k msg/s at prefetch 3000, two processes on disjoint partitions ~20k). The
feeders (`processor.hub.fixed`) claim nothing and write no checkpoint: a replay leaves the live consumers alone.
Each partition is read over a `Span`: from where it starts up to its end, the sequence number the hub had last
enqueued when the replay began, so the replay ends and its projection does not depend on what arrives meanwhile.
The fold is a merge, so how the partitions' batches interleave does not change the projection.

Imports the feeder's wire, the hub's clients (for what a missing hub or group means) and the streaming ingest.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from dataclasses import dataclass, field

from processor.config import Settings
from processor.core.model import Tally
from processor.hub.clients import missing_consumer_group, missing_hub
from processor.hub.wire import ENV, STOP, Batch, Error, Frame, Opened, Span, read_frame, settings_to_env
from processor.ingest import ingest_batches
from processor.stores.base import ProjectionStore

log = logging.getLogger("processor.replay")

Message = tuple[str, bytes, str | None, str | None]  # (label, body, delivery kind, body section): for ingest


class ReplayFailed(Exception):
    """The replay cannot go on (a missing hub or consumer group, a feeder that died); the message is one line."""


@dataclass
class HubReplay:
    """What a replay did. `ends`: partition -> (sequence number, offset) of the last message folded."""

    tally: Tally = field(default_factory=Tally)
    messages: int = 0
    ends: dict[str, tuple[int, str]] = field(default_factory=dict)
    complete: bool = False


def default_feeders() -> int:
    """One feeder per core this process may run on (a container's cpuset, where the OS tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def split(partitions: list[str], feeders: int) -> list[list[str]]:
    """Round-robin shares of `partitions` (in numeric order) for at most `feeders` processes, none empty."""
    ordered = sorted(partitions, key=lambda p: (len(p), p))
    count = max(1, min(feeders, len(ordered)))
    return [ordered[i::count] for i in range(count)] if ordered else []


async def replay_partitions(
    settings: Settings,
    store: ProjectionStore,
    group: str,
    spans: dict[str, Span],
    feeders: int,
    stop: asyncio.Event,
    progress: Callable[[int, int], None] | None = None,
) -> HubReplay:
    """Fold every partition of `spans` over its span into `store`, reading with `feeders` processes on consumer
    group `group`, until each reached its end (`complete`) or `stop` is set. `progress(done, total)`: sequence
    numbers covered so far, of all. Raises `ReplayFailed`."""
    result = HubReplay()
    base = {pid: -1 if span.after is None else span.after for pid, span in spans.items()}
    total = sum(span.end - base[pid] for pid, span in spans.items())
    reached = {pid: base[pid] for pid in spans}
    # A replay reads a backlog: its own, larger prefetch and batches (the worker's are tuned for latency).
    feeder_settings = _feeder_settings(settings)
    shares = split(list(spans), feeders)
    log.info(
        "replaying %d partitions with %d feeder processes (prefetch %d, batch %d)",
        len(spans),
        len(shares),
        feeder_settings.prefetch,
        feeder_settings.max_batch_size,
    )
    processes = [await _start(feeder_settings, group, {pid: spans[pid] for pid in share}) for share in shares]
    # Bounded: when the fold falls behind, the readers stop reading, the pipes fill and the feeders' SDK stops
    # pulling from the hub.
    queue: asyncio.Queue[Frame | _Ended] = asyncio.Queue(maxsize=2 * max(1, len(processes)))
    readers = [asyncio.create_task(_read(p, queue), name=f"replay feeder {p.pid}") for p in processes]

    async def batches() -> AsyncIterator[list[Message]]:
        running = len(processes)
        while running:
            item = await _next(queue, stop)
            if item is None:  # stop was asked for: what is folded so far is written, the rest is not read
                return
            if isinstance(item, _Ended):
                running -= 1
                if item.code != 0:
                    raise ReplayFailed(f"a feeder process exited with code {item.code}")
            elif isinstance(item, Batch) and item.deliveries:
                pid, last = item.partition, item.deliveries[-1]
                messages: list[Message] = [
                    (f"partition {pid} seq {d.sequence_number}", d.body, d.kind, d.section) for d in item.deliveries
                ]
                result.messages += len(messages)
                result.ends[pid] = (last.sequence_number, last.offset)
                reached[pid] = last.sequence_number
                if progress is not None:
                    progress(sum(min(reached[p], s.end) - base[p] for p, s in spans.items()), total)
                yield messages
            elif isinstance(item, Opened):
                log.info("partition %s opened: replaying up to %d", item.partition, spans[item.partition].end)
            elif isinstance(item, Error):
                if item.missing == "hub":
                    raise ReplayFailed(missing_hub(settings))
                if item.missing == "consumer group":
                    raise ReplayFailed(missing_consumer_group(settings, group))
                log.warning("replay: %s (the SDK retries)", item.text)

    try:
        result.tally = await ingest_batches(batches(), settings, store)
    finally:
        await _shut(processes, readers, queue, settings.shutdown_timeout)
    result.complete = not stop.is_set() and all(reached[pid] >= span.end for pid, span in spans.items())
    if not result.complete and not stop.is_set():
        short = sorted(pid for pid, span in spans.items() if reached[pid] < span.end)
        raise ReplayFailed(f"the feeders ended before partitions {', '.join(short)} reached their ends")
    return result


@dataclass
class _Ended:
    """A feeder's stdout ended: the process exited with `code`."""

    code: int


def _feeder_settings(settings: Settings) -> Settings:
    from dataclasses import replace

    return replace(settings, prefetch=settings.replay_prefetch, max_batch_size=settings.replay_batch)


async def _start(settings: Settings, group: str, spans: dict[str, Span]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "processor.hub.fixed",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, ENV: settings_to_env(settings, group, partitions=spans)},
        start_new_session=True,  # a Ctrl-C reaches this process, which tells the feeders to stop
    )


async def _read(process: asyncio.subprocess.Process, queue: asyncio.Queue[Frame | _Ended]) -> None:
    assert process.stdout is not None, "started with a pipe"
    while (frame := await read_frame(process.stdout)) is not None:
        await queue.put(frame)
    await queue.put(_Ended(await process.wait()))


async def _next(queue: asyncio.Queue[Frame | _Ended], stop: asyncio.Event) -> Frame | _Ended | None:
    """The next item, or None once `stop` is set."""
    if stop.is_set():
        return None
    if not queue.empty():
        return queue.get_nowait()
    getting = asyncio.ensure_future(queue.get())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait([getting, stopping], return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if getting.done():
        return getting.result()
    getting.cancel()
    return None


async def _shut(
    processes: list[asyncio.subprocess.Process],
    readers: list[asyncio.Task[None]],
    queue: asyncio.Queue[Frame | _Ended],
    timeout: float,
) -> None:
    """Tell every feeder still running to stop and wait for it (killed after `timeout` seconds). What they still
    send is read and dropped: a feeder blocked on a full pipe could not stop."""

    async def drop() -> None:
        while True:
            await queue.get()

    dropping = asyncio.create_task(drop())
    try:
        for process in processes:
            if process.returncode is None and process.stdin is not None:
                with suppress(ConnectionError):
                    process.stdin.write(STOP)
                    await process.stdin.drain()
        for process in processes:
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except TimeoutError:
                with suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        await asyncio.gather(*readers, return_exceptions=True)  # each ends at its feeder's end of output
    finally:
        dropping.cancel()
        with suppress(asyncio.CancelledError):
            await dropping
