"""The worker's histograms: store commit durations and enqueue-to-commit latency, as /metrics exposes them.

Imports nothing of the project's.
"""

from __future__ import annotations

# Seconds. A commit of a few objects takes ~1 ms on SQLite, of a thousand ~25-55 ms (bench/store_throughput.py).
COMMIT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Seconds from the hub's enqueue time to the commit: the reorder window (2 s by default) plus the pipeline, and
# up to hours for a worker catching up on a backlog.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)


class Histogram:
    """Cumulative buckets, a count and a sum: what a Prometheus histogram exposes."""

    __slots__ = ("bounds", "buckets", "count", "seconds")

    def __init__(self, bounds: tuple[float, ...]):
        self.bounds = bounds
        self.buckets = [0] * len(bounds)  # observations at or below each bound
        self.count = 0
        self.seconds = 0.0

    def observe(self, seconds: float) -> None:
        self.count += 1
        self.seconds += seconds
        for i, bound in enumerate(self.bounds):
            if seconds <= bound:
                self.buckets[i] += 1
