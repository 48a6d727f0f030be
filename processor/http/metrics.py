"""/metrics in the Prometheus text exposition format (version 0.0.4), written by hand.

Each family is one HELP line, one TYPE line and its samples, together. Label values escape backslash,
double quote and newline; HELP text escapes backslash and newline. Per-partition series describe only the
partitions this replica owns now (the others belong to the replicas that own them).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable

from aiohttp import web

from processor.core.model import OUTCOMES
from processor.http.context import context
from processor.http.view import HistogramView, WorkerView

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Sample = tuple[str, dict[str, str], float]  # (suffix, labels, value)


def histogram_samples(hist: HistogramView) -> list[Sample]:
    samples: list[Sample] = [("_bucket", {"le": format_value(float(b))}, n) for b, n in zip(hist.bounds, hist.buckets)]
    return samples + [
        ("_bucket", {"le": "+Inf"}, hist.count),
        ("_sum", {}, float(hist.seconds)),
        ("_count", {}, hist.count),
    ]


def escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def format_value(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> None:
        self.lines.append(f"# HELP {name} {escape_help(help_text)}")
        self.lines.append(f"# TYPE {name} {kind}")
        for suffix, labels, value in samples:
            rendered = ",".join(f'{k}="{escape_label(str(v))}"' for k, v in labels.items())
            self.lines.append(
                f"{name}{suffix}{{{rendered}}} {format_value(value)}"
                if rendered
                else f"{name}{suffix} {format_value(value)}"
            )

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def worker_families(out: Exposition, worker: WorkerView) -> None:
    tally = worker.tally
    out.family(
        "processor_events_total",
        "counter",
        "Events by outcome and event type.",
        [("", {"outcome": o, "type": t}, n) for (o, t), n in sorted(tally.by_outcome_type.items()) if o in OUTCOMES],
    )
    out.family(
        "processor_events_read_total",
        "counter",
        "Events decoded from messages (a message that fails to decode counts one).",
        [("", {}, tally.read)],
    )

    now = time.monotonic()
    states = sorted(worker.partitions.items(), key=lambda item: (len(item[0]), item[0]))
    last, ckpt, lag, age, stalled = [], [], [], [], []
    for pid, state in states:
        labels = {"partition": pid}
        if state.progress.last_received is not None:
            last.append(("", labels, state.progress.last_received))
        if state.checkpointed is not None:
            ckpt.append(("", labels, state.checkpointed[0]))
        if (n := worker.lag(state)) is not None:
            lag.append(("", labels, n))
        if state.checkpointed_at is not None:
            age.append(("", labels, round(now - state.checkpointed_at, 3)))
        stalled.append(("", labels, 1 if state.stalled else 0))
    out.family(
        "processor_partition_last_sequence_number",
        "gauge",
        "Sequence number of the last message received, per owned partition.",
        last,
    )
    out.family(
        "processor_partition_checkpoint_sequence_number",
        "gauge",
        "Sequence number of the last checkpoint written, per owned partition.",
        ckpt,
    )
    out.family(
        "processor_partition_lag",
        "gauge",
        "Last enqueued minus checkpointed sequence number, per owned partition.",
        lag,
    )
    out.family(
        "processor_partition_checkpoint_age_seconds",
        "gauge",
        "Seconds since this replica last wrote the partition's checkpoint.",
        age,
    )
    out.family(
        "processor_partition_stalled",
        "gauge",
        "1 when the hub holds newer events than the partition has received for a while.",
        stalled,
    )

    buffer = worker.buffer
    out.family(
        "processor_reorder_buffer_events", "gauge", "Events waiting in the reorder window.", [("", {}, len(buffer))]
    )
    out.family(
        "processor_reorder_buffer_bytes",
        "gauge",
        "Bytes of the events waiting in the reorder window.",
        [("", {}, buffer.bytes)],
    )
    out.family(
        "processor_reorder_buffer_objects",
        "gauge",
        "Objects with events waiting in the reorder window.",
        [("", {}, buffer.objects)],
    )

    out.family(
        "processor_store_commit_seconds",
        "histogram",
        "Duration of store transactions.",
        histogram_samples(worker.commits),
    )
    out.family(
        "processor_enqueue_to_commit_seconds",
        "histogram",
        "From the hub's enqueue time of an event to its store commit (includes the reorder window).",
        histogram_samples(worker.enqueue_latency),
    )
    out.family(
        "processor_worker_running",
        "gauge",
        "1 while the worker's apply loop runs.",
        [("", {}, 1 if worker.running else 0)],
    )


async def metrics(request: web.Request) -> web.Response:
    ctx = context(request)
    out = Exposition()
    if ctx.worker is not None:
        worker_families(out, ctx.worker)
    try:
        counts = await ctx.counts.get()
    except Exception:  # reported as processor_store_up 0; the worker's figures are still worth scraping
        counts = None
    out.family(
        "processor_store_up",
        "gauge",
        "1 when the projection store answered its last count query.",
        [("", {}, 0 if counts is None else 1)],
    )
    if counts is not None:
        out.family(
            "processor_objects",
            "gauge",
            "Objects in the projection (refreshed every few seconds).",
            [("", {}, counts["objects"])],
        )
        out.family(
            "processor_dead_letters",
            "gauge",
            "Dead letters stored (refreshed every few seconds).",
            [("", {}, counts["dead_letters"])],
        )
    return web.Response(body=out.text().encode(), headers={"Content-Type": CONTENT_TYPE, "Cache-Control": "no-store"})
