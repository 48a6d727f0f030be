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
import fcntl
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import suppress
from dataclasses import dataclass, field, replace

from processor.config import Settings
from processor.core.model import Tally
from processor.hub.clients import missing_consumer_group, missing_hub
from processor.hub.wire import (
    ENV,
    HEADER_SIZE,
    STOP,
    Batch,
    Error,
    Frame,
    Opened,
    Span,
    decode_frame,
    frame_length,
    settings_to_env,
)
from processor.ingest import ingest_batches
from processor.stores.base import ProjectionStore

log = logging.getLogger("processor.replay")

Message = tuple[str, bytes, str | None, str | None]  # (label, body, delivery kind, body section): for ingest
# Bytes of frames per feeder read ahead of the fold: more than a round of the ingest's fold (20,000 events of
# ~700 bytes), during which the fold reads nothing; with less, the feeders waited out each round (measured).
READ_AHEAD = 24 << 20
PIPE_SIZE = 1 << 20


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
    feeds = _Feeders(asyncio.get_running_loop())

    async def batches() -> AsyncIterator[list[Message]]:
        for share in shares:
            await feeds.start(feeder_settings, group, {pid: spans[pid] for pid in share})
        running = len(shares)
        while running:
            item = await _next(feeds.queue, stop)
            if item is None:  # stop was asked for: what is folded so far is written, the rest is not read
                return
            if isinstance(item, _Ended):
                running -= 1
                code = await item.process.wait()
                if code != 0:
                    raise ReplayFailed(f"a feeder process exited with code {code}")
                continue
            frame = feeds.taken(item)
            if isinstance(frame, Batch) and frame.deliveries:
                pid, last = frame.partition, frame.deliveries[-1]
                messages: list[Message] = [
                    (f"partition {pid} seq {d.sequence_number}", d.body, d.kind, d.section) for d in frame.deliveries
                ]
                result.messages += len(messages)
                result.ends[pid] = (last.sequence_number, last.offset)
                reached[pid] = last.sequence_number
                if progress is not None:
                    progress(sum(min(reached[p], s.end) - base[p] for p, s in spans.items()), total)
                yield messages
            elif isinstance(frame, Opened):
                log.info("partition %s opened: replaying up to %d", frame.partition, spans[frame.partition].end)
            elif isinstance(frame, Error):
                if frame.missing == "hub":
                    raise ReplayFailed(missing_hub(settings))
                if frame.missing == "consumer group":
                    raise ReplayFailed(missing_consumer_group(settings, group))
                log.warning("replay: %s (the SDK retries)", frame.text)

    try:
        result.tally = await ingest_batches(batches(), settings, store)
    finally:
        await feeds.shut(settings.shutdown_timeout)
    result.complete = not stop.is_set() and all(reached[pid] >= span.end for pid, span in spans.items())
    if not result.complete and not stop.is_set():
        short = sorted(pid for pid, span in spans.items() if reached[pid] < span.end)
        raise ReplayFailed(f"the feeders ended before partitions {', '.join(short)} reached their ends")
    return result


@dataclass
class _Ended:
    """A feeder's stdout ended: the process exits (or has)."""

    process: asyncio.subprocess.Process


def _feeder_settings(settings: Settings) -> Settings:
    return replace(settings, prefetch=settings.replay_prefetch, max_batch_size=settings.replay_batch)


class _Feeders:
    """The feeder processes, each with a thread that reads its frames off its stdout.

    Why threads: the fold holds this process's event loop for a second at a time (a round of 20,000 events), and a
    feeder whose pipe is full stops reading the hub, so reading and folding took turns instead of overlapping. A
    thread reads on meanwhile (the GIL is released while it waits on the pipe), up to `READ_AHEAD` bytes per
    feeder waiting to be folded: then it stops reading, the pipe fills and the feeder's SDK stops pulling."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.queue: asyncio.Queue[bytes | _Ended] = asyncio.Queue()  # bounded by `room`
        self.room = threading.Condition()
        self.waiting = 0  # bytes in the queue
        self.processes: list[asyncio.subprocess.Process] = []
        self.threads: list[threading.Thread] = []
        self.closing = False

    async def start(self, settings: Settings, group: str, spans: dict[str, Span]) -> None:
        read_end, write_end = os.pipe()
        if hasattr(fcntl, "F_SETPIPE_SZ"):  # Linux: 64 KiB by default, 1 MiB for anyone (fs/pipe-max-size)
            with suppress(OSError):
                fcntl.fcntl(read_end, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "processor.hub.fixed",
                stdin=asyncio.subprocess.PIPE,
                stdout=write_end,
                env={**os.environ, ENV: settings_to_env(settings, group, partitions=spans)},
                start_new_session=True,  # a Ctrl-C reaches this process, which tells the feeders to stop
            )
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        self.processes.append(process)
        thread = threading.Thread(target=self._read, args=(read_end, process), name=f"feeder {process.pid}")
        thread.daemon = True  # never holds the exit of the command
        thread.start()
        self.threads.append(thread)

    def _read(self, fd: int, process: asyncio.subprocess.Process) -> None:
        with open(fd, "rb", buffering=PIPE_SIZE) as out:
            while len(header := out.read(HEADER_SIZE)) == HEADER_SIZE:
                length = frame_length(header)
                data = out.read(length)
                if len(data) < length:
                    break  # the feeder died mid-frame: its exit code says so
                with self.room:
                    self.room.wait_for(lambda: self.closing or self.waiting < READ_AHEAD * len(self.threads))
                    if self.closing:
                        continue  # nobody folds any more: read on so that the feeder can stop
                    self.waiting += len(data)
                self._hand_over(data)
        self._hand_over(_Ended(process))

    def _hand_over(self, item: bytes | _Ended) -> None:
        with suppress(RuntimeError):  # the loop has closed: the command is over
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)

    def taken(self, data: bytes) -> Frame:
        """The frame in `data`, taken off the queue: room for the next."""
        with self.room:
            self.waiting -= len(data)
            self.room.notify_all()
        return decode_frame(data)

    async def shut(self, timeout: float) -> None:
        """Tell every feeder still running to stop and wait for it (killed after `timeout` seconds)."""
        with self.room:
            self.closing = True  # a thread waiting for room goes on, and drops what follows
            self.room.notify_all()
        for process in self.processes:
            if process.returncode is None and process.stdin is not None:
                with suppress(ConnectionError):
                    process.stdin.write(STOP)
                    await process.stdin.drain()
        for process in self.processes:
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except TimeoutError:
                with suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        for thread in self.threads:
            await asyncio.to_thread(thread.join)  # at its feeder's end of output, which has come


async def _next(queue: asyncio.Queue[bytes | _Ended], stop: asyncio.Event) -> bytes | _Ended | None:
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
