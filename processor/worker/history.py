"""The worker's last hour: its counters, lag and latency sampled every few seconds into a bounded ring, for the
dashboard's charts (/api/history).

A sample holds cumulative figures (events read, applied, stale, dead-lettered; the enqueue-to-commit histogram)
and each owned partition's lag at that instant; `series` turns consecutive samples into what a chart draws:
rates per second, lag, and the latency of the events committed in each interval (mean, p50, p99 estimated from
the histogram's buckets as Prometheus' histogram_quantile does). Memory is fixed: an hour at 10 s is 361 samples.

Imports nothing of the project's: it reads the worker's attributes (tally, partitions, enqueue_latency).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

COUNTERS = ("read", "applied", "stale", "dead_lettered")
QUANTILES = (("p50", 0.5), ("p99", 0.99))


@dataclass(frozen=True, slots=True)
class Sample:
    at: float  # wall clock, epoch seconds
    counts: tuple[int, ...]  # COUNTERS, cumulative
    lag: dict[str, int | None]  # owned partitions at that instant (None: not known yet)
    latency_count: int
    latency_seconds: float
    latency_buckets: tuple[int, ...]  # cumulative, at or below each bound


class History:
    def __init__(self, interval: float = 10.0, span: float = 3600.0):
        self.interval = interval
        self.span = span
        self.samples: deque[Sample] = deque(maxlen=int(span / interval) + 1)
        self.bounds: tuple[float, ...] = ()

    def take(self, worker: Any, at: float) -> None:
        """Sample the worker now (`at`: the wall clock)."""
        tally, latency = worker.tally, worker.enqueue_latency
        self.bounds = tuple(latency.bounds)
        self.samples.append(
            Sample(
                at,
                (tally.read, *(tally.count(name) for name in COUNTERS[1:])),
                {pid: worker.lag(state) for pid, state in worker.partitions.items()},
                latency.count,
                latency.seconds,
                tuple(latency.buckets),
            )
        )

    async def run(self, worker: Any, clock: Callable[[], float] = time.time) -> None:
        """Sample every `interval` seconds, forever (a task of the running worker)."""
        while True:
            self.take(worker, clock())
            await asyncio.sleep(self.interval)

    def series(self) -> dict[str, Any]:
        """The charts' data: one point per interval between two samples, oldest first."""
        points = []
        samples = list(self.samples)
        for before, after in zip(samples, samples[1:]):
            seconds = after.at - before.at
            if seconds <= 0:
                continue
            rates = {name: round((b - a) / seconds, 3) for name, a, b in zip(COUNTERS, before.counts, after.counts)}
            points.append(
                {
                    "at": round(after.at, 3),
                    "rate": rates,
                    "lag": after.lag,
                    "latency": _latency(before, after, self.bounds),
                }
            )
        return {"interval": self.interval, "span": self.span, "points": points}


def _latency(before: Sample, after: Sample, bounds: Sequence[float]) -> dict[str, float | int | None]:
    """The latency of what was committed between two samples: count, mean and quantiles (None: nothing)."""
    count = after.latency_count - before.latency_count
    if count <= 0:
        return {"count": 0, "mean": None, **{name: None for name, _ in QUANTILES}}
    buckets = [b - a for a, b in zip(before.latency_buckets, after.latency_buckets)]
    out: dict[str, float | int | None] = {"count": count}
    out["mean"] = round((after.latency_seconds - before.latency_seconds) / count, 6)
    for name, q in QUANTILES:
        out[name] = quantile(q, bounds, buckets, count)
    return out


def quantile(q: float, bounds: Sequence[float], cumulative: Sequence[int], count: int) -> float:
    """The q-quantile of `count` observations in cumulative buckets (at or below each bound), interpolated
    linearly within its bucket from the bucket below's bound (0 for the first); one beyond the last bound is
    that bound (histogram_quantile's rule for the +Inf bucket)."""
    rank = q * count
    lower, below = 0.0, 0
    for bound, at_or_below in zip(bounds, cumulative):
        if at_or_below >= rank and at_or_below > below:
            return round(lower + (bound - lower) * (rank - below) / (at_or_below - below), 6)
        lower, below = bound, at_or_below
    return float(bounds[-1]) if bounds else 0.0
