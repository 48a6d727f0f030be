"""File ingest: message bodies, one per line, through the core into the store.

The reorder buffer holds everything until the end of the input (or until its bound pushes the oldest out),
so any permutation of a stream projects the same as the stream in order.
"""

from __future__ import annotations

import gc
import sys
from typing import BinaryIO, Iterable, Iterator

from processor.config import Settings
from processor.core.intake import Intake
from processor.core.model import DeadLetter, Tally
from processor.core.reorder import ReorderBuffer
from processor.events.envelope import DecodeLimits
from processor.projector import Projector
from processor.stores.base import ProjectionStore

# Objects per store transaction when the buffer is drained; keeps each transaction's memory small.
DRAIN_BATCH = 5000
DEAD_LETTER_BATCH = 1000
FREEZE_EVERY = 20_000


def make_intake(settings: Settings) -> Intake:
    limits = DecodeLimits(max_body_bytes=settings.max_body_bytes, max_depth=settings.max_depth)
    return Intake(settings.catalog(), settings.allowed_sources, limits)


def read_lines(paths: Iterable[str]) -> Iterator[tuple[str, bytes]]:
    """(label, body) per non-blank line; '-' is standard input. Raises OSError for an unreadable file."""
    for path in paths:
        stream: BinaryIO = sys.stdin.buffer if path == "-" else open(path, "rb")
        name = "stdin" if path == "-" else path
        try:
            for lineno, line in enumerate(stream, 1):
                body = line.rstrip(b"\r\n")
                if body.strip():
                    yield f"{name}:{lineno}", body
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()


async def ingest(lines: Iterable[tuple[str, bytes]], settings: Settings, store: ProjectionStore) -> Tally:
    intake = make_intake(settings)
    buffer = ReorderBuffer(window=None, max_events=settings.reorder_max_events, max_bytes=settings.reorder_max_bytes)
    spare = max(1, min(settings.reorder_max_events // 10, 10_000))
    tally = Tally()
    projector = Projector(store, tally)
    dead: list[DeadLetter] = []
    # Held events are long-lived by design and hold no reference cycles: moving them out of the cyclic
    # collector's sight keeps it from rescanning an ever larger heap (measured: ingest 2-3x faster).
    gc.freeze()
    try:
        await _feed(lines, intake, buffer, projector, tally, spare, dead)
    finally:
        gc.unfreeze()
    return tally


async def _feed(lines, intake, buffer, projector, tally, spare, dead) -> None:
    count = 0
    for label, body in lines:
        count += 1
        if count % FREEZE_EVERY == 0:
            gc.freeze()
        admitted, bad = intake.admit(body, tally, label=label)
        for ev in admitted:
            if not buffer.add(ev):
                tally.add("duplicate", ev.event.type)
        if bad:
            dead.extend(bad)
        if buffer.over_bound():
            await projector.apply(buffer.release(spare=spare), dead)
            dead = []
        elif len(dead) >= DEAD_LETTER_BATCH:
            await projector.apply({}, dead)
            dead = []
    released = buffer.drain()
    keys = list(released)
    for i in range(0, max(len(keys), 1), DRAIN_BATCH):
        await projector.apply({k: released[k] for k in keys[i : i + DRAIN_BATCH]}, dead)
        dead = []
