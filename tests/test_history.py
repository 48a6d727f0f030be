"""The dashboard history's pure parts: quantiles from cumulative buckets, and rates between samples."""

from __future__ import annotations

import pytest

from processor.worker.history import History, Sample, quantile


def test_quantiles_interpolate_within_their_bucket_as_histogram_quantile_does():
    bounds = (0.1, 0.5, 1.0)
    # 10 observations: 2 up to 0.1, 6 in (0.1, 0.5], 2 in (0.5, 1.0].
    assert quantile(0.5, bounds, (2, 8, 10), 10) == pytest.approx(0.1 + 0.4 * 3 / 6)
    assert quantile(0.1, bounds, (2, 8, 10), 10) == pytest.approx(0.05)
    assert quantile(0.99, bounds, (2, 8, 10), 10) == pytest.approx(0.5 + 0.5 * 1.9 / 2)
    assert quantile(0.99, bounds, (2, 8, 8), 10) == 1.0  # beyond the last bound: that bound


def test_series_gives_rates_per_second_lag_and_the_latency_of_each_interval():
    history = History(interval=10, span=30)
    bounds = (0.1, 0.5, 1.0)
    history.bounds = bounds
    history.samples.append(Sample(100.0, (0, 0, 0, 0), {"0": 5}, 0, 0.0, (0, 0, 0)))
    history.samples.append(Sample(110.0, (50, 40, 5, 1), {"0": 2, "1": None}, 10, 3.0, (2, 8, 10)))
    history.samples.append(Sample(120.0, (50, 40, 5, 1), {"0": 0}, 10, 3.0, (2, 8, 10)))
    series = history.series()
    assert series["interval"] == 10 and [p["at"] for p in series["points"]] == [110.0, 120.0]
    first, second = series["points"]
    assert first["rate"] == {"read": 5.0, "applied": 4.0, "stale": 0.5, "dead_lettered": 0.1}
    assert first["lag"] == {"0": 2, "1": None} and second["lag"] == {"0": 0}
    assert first["latency"] == {"count": 10, "mean": 0.3, "p50": pytest.approx(0.3), "p99": pytest.approx(0.975)}
    assert second["rate"]["read"] == 0 and second["latency"] == {"count": 0, "mean": None, "p50": None, "p99": None}


def test_the_ring_keeps_one_span_of_samples():
    history = History(interval=10, span=30)
    for i in range(10):
        history.samples.append(Sample(float(i), (i, 0, 0, 0), {}, 0, 0.0, ()))
    assert [s.at for s in history.samples] == [6.0, 7.0, 8.0, 9.0]
