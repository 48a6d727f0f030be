"""Progress of the long commands (ingest, replay, Capture): a tqdm bar on a terminal, one log line a minute
anywhere else (a container's log, CI, a pipe), never a carriage return into a log. Each command prints its
JSON summary itself at the end.

Imports tqdm (only when on a terminal) and the logging module.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO, TypeVar

log = logging.getLogger("processor.progress")

LOG_EVERY = 60.0  # seconds between progress lines when not on a terminal
T = TypeVar("T")


class Progress:
    def __init__(
        self,
        what: str,
        unit: str = "messages",
        total: int | None = None,
        stream: TextIO | None = None,
        every: float = LOG_EVERY,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.what = what
        self.unit = unit
        self.total = total
        self.done = 0
        self.clock = clock
        self.every = every
        self.started = clock()
        self._next_line = self.started + every
        stream = stream or sys.stderr
        self._bar: Any = None
        if stream.isatty():
            from tqdm import tqdm

            self._bar = tqdm(
                total=total, desc=what, unit=" " + unit if unit != "B" else "B", unit_scale=unit == "B", file=stream
            )

    def update(self, done: int, total: int | None = None) -> None:
        """`done` so far (absolute), of `total` when it became known or changed."""
        if total is not None:
            self.total = total
        step, self.done = done - self.done, done
        bar = self._bar
        if bar is not None:
            if total is not None and bar.total != total:
                bar.total = total
                bar.refresh()
            bar.update(step)
            return
        now = self.clock()
        if now >= self._next_line:
            self._next_line = now + self.every
            log.info("%s", self.line(now))

    def line(self, now: float | None = None) -> str:
        elapsed = max(1e-9, (self.clock() if now is None else now) - self.started)
        of = ""
        if self.total:
            of = f"/{self.total} ({min(1.0, self.done / self.total):.0%})"
        return f"{self.what}: {self.done}{of} {self.unit}, {self.done / elapsed:.0f}/s over {elapsed:.0f}s"

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def counted(self, items: Iterable[T], every: int = 1024) -> Iterator[T]:
        """`items`, counted into the progress every `every` of them (so that counting costs next to nothing)."""
        base, count = self.done, 0
        for item in items:
            count += 1
            if not count % every:
                self.update(base + count)
            yield item
        self.update(base + count)
