"""Parallel ingest: the messages split between fold processes (`ingest.processes`), folding into one store.

One process folds at about a core's speed (the fold is Python). So the parent only reads and routes: each
message goes, by a glance at its bytes (`processor.core.routing`), to a fold process (`processor.ingest_process`)
that runs the streaming ingest on its share. The projection is the same as one ingest's, whatever the split:
two fold processes that write one object meet at the store's compare-and-set (the two-writer guarantee), and
the route keeps that rare by sending an object's events, and a container's namespace, to one process.

Each fold process holds 1/N of the ingest cache's bound, so the bound holds for the whole ingest.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections import deque
from collections.abc import AsyncIterable, Callable, Iterable
from dataclasses import replace

from processor.config import Settings, settings_to_json
from processor.core.model import Tally
from processor.core.routing import Router
from processor.ingest import Message, ingest_batches
from processor.ingest_wire import (
    ENV,
    HEADER_SIZE,
    Done,
    Messages,
    Summary,
    WireMessage,
    decode_summary,
    encode_frame,
    frame_length,
)
from processor.stores.base import ProjectionStore, StoreError

FRAME_MESSAGES = 2000  # messages per frame: large enough that framing costs nothing, small enough to stream
STDERR_LINES = 20


def fold_processes(settings: Settings) -> int:
    """How many fold processes an ingest with these settings uses: the setting, else one per core; one for
    an in-memory store, which no other process can reach."""
    if settings.store_url.endswith(":memory:"):
        return 1
    return settings.ingest_processes or os.cpu_count() or 1


async def ingest_sharded(
    batches: AsyncIterable[Iterable[Message]],
    settings: Settings,
    store: ProjectionStore,
    route_of: Callable[[bytes, int], int] | None = None,
) -> Tally:
    """`processor.ingest.ingest_batches`, in `fold_processes(settings)` processes. `store` (open) is the one
    `settings.store_url` names: used as it is when one process folds, else each fold process opens its own.
    `route_of(body, processes)`: which process folds a message (any choice gives the same projection; by
    default a `Router`)."""
    processes = fold_processes(settings)
    if processes == 1:
        return await ingest_batches(batches, settings, store)
    share = replace(
        settings,
        ingest_cache_objects=max(1, settings.ingest_cache_objects // processes),
        ingest_cache_bytes=max(1, settings.ingest_cache_bytes // processes),
    )
    route_of = route_of or Router()
    folds = [await _FoldProcess.start(i, share) for i in range(processes)]
    try:
        pending: list[list[WireMessage]] = [[] for _ in folds]
        async for batch in batches:
            for message in batch:
                index = route_of(message[1], processes)
                target = pending[index]
                target.append(message)
                if len(target) >= FRAME_MESSAGES:
                    await folds[index].send(Messages(target))
                    pending[index] = []
        for fold, rest in zip(folds, pending):
            if rest:
                await fold.send(Messages(rest))
            await fold.send(Done())
        tally = Tally()
        for fold in folds:
            (await fold.summary()).add_to(tally)
        return tally
    finally:
        for fold in folds:
            await fold.stop()


class _FoldProcess:
    def __init__(self, index: int, proc: asyncio.subprocess.Process):
        self.index = index
        self.proc = proc
        self.stderr: deque[str] = deque(maxlen=STDERR_LINES)
        self._stderr_task = asyncio.create_task(self._relay_stderr(), name=f"fold process {index} stderr")

    @classmethod
    async def start(cls, index: int, settings: Settings) -> _FoldProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "processor.ingest_process",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, ENV: settings_to_json(settings)},
            start_new_session=True,  # a Ctrl-C reaches the parent, which ends its fold processes
        )
        return cls(index, proc)

    async def _relay_stderr(self) -> None:
        """Its log lines go on to ours; the last few are kept to name a failure."""
        assert self.proc.stderr is not None
        async for line in self.proc.stderr:
            text = line.decode("utf-8", "replace").rstrip()
            self.stderr.append(text)
            print(text, file=sys.stderr)

    async def send(self, frame: Messages | Done) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(encode_frame(frame))
            await self.proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError):
            raise await self._failure() from None

    async def summary(self) -> Summary:
        assert self.proc.stdout is not None
        try:
            header = await self.proc.stdout.readexactly(HEADER_SIZE)
            data = await self.proc.stdout.readexactly(frame_length(header))
        except asyncio.IncompleteReadError:
            raise await self._failure() from None
        if await self.proc.wait() != 0:
            raise await self._failure()
        return decode_summary(data)

    async def _failure(self) -> StoreError:
        code = await self.proc.wait()
        await self._stderr_task
        reason = self.stderr[-1] if self.stderr else "no message"
        return StoreError(f"fold process {self.index} exited with code {code}: {reason}")

    async def stop(self) -> None:
        """Ends it if it still runs (an error elsewhere, a Ctrl-C): what it did not commit is not written."""
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        await self._stderr_task
