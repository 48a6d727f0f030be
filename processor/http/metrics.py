"""/metrics through prometheus-client: the processor's families, read from the worker and the store at scrape
time, beside the client's standard process, platform and garbage-collector collectors.

The worker keeps its own counters and histograms (plain integers on its hot path, see processor.worker.metrics);
`ProcessorCollector` turns them into metric families when Prometheus scrapes, so nothing here runs per event.
The text format follows the scraper's Accept header (Prometheus text 0.0.4 by default, OpenMetrics when asked).
Per-partition series describe only the partitions this replica owns now (the others belong to their owners).
Imports prometheus-client, aiohttp and the HTTP layer's own context and view.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping

from aiohttp import web
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from processor.core.model import OUTCOMES
from processor.http.context import Context, context
from processor.http.view import HistogramView, WorkerView


def histogram(name: str, help_text: str, hist: HistogramView) -> HistogramMetricFamily:
    buckets: list[tuple[str, float]] = [(floatToGoString(b), n) for b, n in zip(hist.bounds, hist.buckets)]
    buckets.append(("+Inf", hist.count))
    return HistogramMetricFamily(name, help_text, buckets=buckets, sum_value=hist.seconds)


def gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=value)


def per_partition(name: str, help_text: str, values: list[tuple[str, float]]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_text, labels=["partition"])
    for pid, value in values:
        family.add_metric([pid], value)
    return family


def worker_families(worker: WorkerView) -> Iterator[Metric]:
    tally = worker.tally
    events = CounterMetricFamily(
        "processor_events_total", "Events by outcome and event type.", labels=["outcome", "type"]
    )
    for (outcome, kind), n in sorted(tally.by_outcome_type.items()):
        if outcome in OUTCOMES:
            events.add_metric([outcome, kind], n)
    yield events
    yield CounterMetricFamily(
        "processor_events_read_total",
        "Events decoded from messages (a message that fails to decode counts one).",
        value=tally.read,
    )

    now = time.monotonic()
    states = sorted(worker.partitions.items(), key=lambda item: (len(item[0]), item[0]))
    last, ckpt, lag, age, stalled = [], [], [], [], []
    for pid, state in states:
        if state.progress.last_received is not None:
            last.append((pid, float(state.progress.last_received)))
        if state.checkpointed is not None:
            ckpt.append((pid, float(state.checkpointed[0])))
        if (behind := worker.lag(state)) is not None:
            lag.append((pid, float(behind)))
        if state.checkpointed_at is not None:
            age.append((pid, round(now - state.checkpointed_at, 3)))
        stalled.append((pid, 1.0 if state.stalled else 0.0))
    yield per_partition(
        "processor_partition_last_sequence_number",
        "Sequence number of the last message received, per owned partition.",
        last,
    )
    yield per_partition(
        "processor_partition_checkpoint_sequence_number",
        "Sequence number of the last checkpoint written, per owned partition.",
        ckpt,
    )
    yield per_partition(
        "processor_partition_lag", "Last enqueued minus checkpointed sequence number, per owned partition.", lag
    )
    yield per_partition(
        "processor_partition_checkpoint_age_seconds",
        "Seconds since this replica last wrote the partition's checkpoint.",
        age,
    )
    yield per_partition(
        "processor_partition_stalled",
        "1 when the hub holds newer events than the partition has received for a while.",
        stalled,
    )

    buffer = worker.buffer
    yield gauge("processor_reorder_buffer_events", "Events waiting in the reorder window.", len(buffer))
    yield gauge("processor_reorder_buffer_bytes", "Bytes of the events waiting in the reorder window.", buffer.bytes)
    yield gauge(
        "processor_reorder_buffer_objects", "Objects with events waiting in the reorder window.", buffer.objects
    )
    yield histogram("processor_store_commit_seconds", "Duration of store transactions.", worker.commits)
    yield histogram(
        "processor_enqueue_to_commit_seconds",
        "From the hub's enqueue time of an event to its store commit (includes the reorder window).",
        worker.enqueue_latency,
    )
    yield gauge("processor_worker_running", "1 while the worker's apply loop runs.", 1 if worker.running else 0)


class ProcessorCollector(Collector):
    """The processor_* families. The store's counts are asynchronous, so the handler fetches them (cached for
    a few seconds) and hands them over just before the registry collects; None: the store did not answer."""

    def __init__(self, worker: WorkerView | None):
        self.worker = worker
        self.counts: Mapping[str, int] | None = None

    def collect(self) -> Iterator[Metric]:
        if self.worker is not None:
            yield from worker_families(self.worker)
        counts = self.counts
        yield gauge(
            "processor_store_up",
            "1 when the projection store answered its last count query.",
            0 if counts is None else 1,
        )
        if counts is not None:
            yield gauge(
                "processor_objects", "Objects in the projection (refreshed every few seconds).", counts["objects"]
            )
            yield gauge(
                "processor_dead_letters", "Dead letters stored (refreshed every few seconds).", counts["dead_letters"]
            )


class Metrics:
    """One registry per HTTP app: the processor's collector and the client's standard ones (process_*:
    CPU, memory, file descriptors; python_info; python_gc_*)."""

    def __init__(self, worker: WorkerView | None):
        self.registry = CollectorRegistry(auto_describe=False)
        self.processor = ProcessorCollector(worker)
        self.registry.register(self.processor)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)


METRICS = web.AppKey("processor.metrics", Metrics)


def install(app: web.Application, ctx: Context) -> None:
    app[METRICS] = Metrics(ctx.worker)


async def metrics(request: web.Request) -> web.Response:
    ctx, registry = context(request), request.app[METRICS]
    try:
        counts = await ctx.counts.get()
    except Exception:  # reported as processor_store_up 0; the worker's figures are still worth scraping
        counts = None
    # Handed over and collected in one step of the event loop: no other scrape can come between.
    registry.processor.counts = counts
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return web.Response(
        body=encode(registry.registry), headers={"Content-Type": content_type, "Cache-Control": "no-store"}
    )
