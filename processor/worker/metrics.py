"""The worker's histograms: store commit durations and enqueue-to-commit latency, as /metrics exposes them.

Imports nothing of the project's.
"""

from __future__ import annotations

# Seconds. A commit of one object takes ~0.5 ms on SQLite and ~1.4 ms on PostgreSQL, of a thousand ~23 and
# ~54 ms (bench/store_throughput.py): fine buckets below 0.1 s, coarse ones for a store under strain.
COMMIT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Seconds from the hub's enqueue time to the commit: up to hours for a worker catching up on a backlog ...
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
# ... but in steady state the reorder window plus a little (window 2 s: p50 2.07 s, p99 2.34 s in
# bench/worker_throughput.py), so buckets just above the window, where the observations gather, let
# histogram_quantile tell 2.1 s from 2.4 s.
ABOVE_WINDOW = (0.05, 0.1, 0.25, 0.5, 1.0)


def latency_buckets(window: float) -> tuple[float, ...]:
    """The enqueue-to-commit buckets for a reorder window of `window` seconds."""
    return tuple(sorted(set(LATENCY_BUCKETS) | {round(window + d, 3) for d in ABOVE_WINDOW}))


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
