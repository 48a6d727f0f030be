"""Metrics, partitions, readiness and the dashboard of a real worker consuming the local Event Hubs endpoint."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from prometheus_client.openmetrics.parser import text_fd_to_metric_families

from devhub import DevHub, HubSpec
from processor.config import Settings
from processor.hub.clients import producer_client
from processor.sim.traffic import Message, deliver, lifecycle
from processor.stores.sqlite import SqliteStore
from processor.worker.app import WorkerOptions, run_worker
from processor.worker.simulate import publish
from tests.http.helpers import Client, Elements, parse_metrics, render, serving, until

pytestmark = pytest.mark.asyncio(loop_scope="module")

PARTITIONS = ("0", "1")


@dataclass
class Run:
    settings: Settings
    store: SqliteStore
    worker: Any
    client: Client
    stop: asyncio.Event
    task: asyncio.Task
    published: int


def messages() -> list[Message]:
    return list(deliver(lifecycle(400, seed=21), seed=22)) + [Message(b"not json", {}, "x", {})]


@asynccontextmanager
async def worker_run(folder: Path, **overrides: Any) -> AsyncIterator[Run]:
    """The local hub with 2 partitions, traffic published, a worker consuming it and the HTTP server on it."""
    async with DevHub([HubSpec(name="events", partitions=len(PARTITIONS))]) as hub:
        settings = replace(
            Settings(),
            eventhub_connection_string=hub.connection_string("events"),
            store_url=f"sqlite:///{folder}/projection.sqlite",
            checkpoint_url=f"sqlite:///{folder}/checkpoints.sqlite",
            reorder_window=0.2,
            load_balancing_interval=1,
            checkpoint_every_seconds=0.5,
            **overrides,
        )
        batch = messages()
        async with producer_client(settings) as producer:
            published = await publish(producer, batch)
        store = SqliteStore(settings.store_url)
        await store.open()
        stop = asyncio.Event()
        started: asyncio.Future = asyncio.get_running_loop().create_future()
        options = WorkerOptions(store=store, on_started=started.set_result, stall_check_interval=5)
        task = asyncio.create_task(run_worker(settings, stop, options))
        try:
            await asyncio.wait([started, task], return_when=asyncio.FIRST_COMPLETED)
            if task.done():
                task.result()  # the worker failed to start: raise its error
            worker = started.result()
            async with serving(settings, store, worker) as client:
                yield Run(settings, store, worker, client, stop, task, published)
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
            await store.close()


def caught_up(run: Run) -> bool:
    w = run.worker
    parts = [w.partitions.get(p) for p in PARTITIONS]
    return (
        w.tally.read >= run.published
        and len(w.buffer) == 0
        and all(s is not None and s.last_enqueued is not None and w.lag(s) == 0 for s in parts)
    )


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def run(tmp_path_factory) -> AsyncIterator[Run]:
    async with worker_run(tmp_path_factory.mktemp("run")) as r:
        await until(lambda: caught_up(r), timeout=30, what="the worker to consume and checkpoint everything")
        yield r


async def test_metrics_describe_the_run(run: Run):
    status, text, response = await run.client.get("/metrics")
    assert status == 200 and response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    m = parse_metrics(text)
    w = run.worker
    assert m["processor_events_read_total"].value() == w.tally.read >= run.published
    events = m["processor_events_total"]
    assert events.kind == "counter"
    assert {(ls["outcome"], ls["type"]): v for _, ls, v in events.samples} == dict(w.tally.by_outcome_type)
    assert events.value(outcome="applied", type="Microsoft.MachineLearningServices.RunStatusChanged") > 0
    assert sum(v for _, ls, v in events.samples if ls["outcome"] == "dead_lettered") == 1

    for pid in PARTITIONS:
        state = w.partitions[pid]
        assert m["processor_partition_last_sequence_number"].value(partition=pid) == state.progress.last_received
        assert m["processor_partition_checkpoint_sequence_number"].value(partition=pid) == state.checkpointed[0]
        assert m["processor_partition_lag"].value(partition=pid) == 0
        assert 0 <= m["processor_partition_checkpoint_age_seconds"].value(partition=pid) < 60
        assert m["processor_partition_stalled"].value(partition=pid) == 0
    for name in ("events", "bytes", "objects"):
        assert m[f"processor_reorder_buffer_{name}"].value() == 0
    commits = m["processor_store_commit_seconds"]
    assert commits.kind == "histogram" and commits.value("_count") == w.commits.count > 0
    assert commits.value("_bucket", le="+Inf") == w.commits.count
    latency = m["processor_enqueue_to_commit_seconds"]
    applied_or_discarded = sum(w.tally.count(o) for o in ("applied", "stale", "duplicate"))
    assert latency.kind == "histogram" and latency.value("_count") == w.enqueue_latency.count
    assert 0 < w.enqueue_latency.count <= applied_or_discarded  # one per event that left the reorder window
    assert latency.value("_sum") > 0
    assert m["processor_store_up"].value() == 1
    counts = await run.store.counts()
    assert m["processor_objects"].value() == counts["objects"] > 0
    assert m["processor_dead_letters"].value() == counts["dead_letters"] == 1


async def test_metrics_carry_the_standard_collectors_and_window_buckets(run: Run):
    m = parse_metrics((await run.client.get("/metrics"))[1])
    # prometheus-client's own collectors: this process's CPU, memory, descriptors; the interpreter and its GC.
    assert m["process_cpu_seconds_total"].value() > 0
    assert m["process_resident_memory_bytes"].value() > 10 << 20
    assert m["process_open_fds"].value() > 0
    assert m["python_info"].kind == "gauge" and m["python_info"].samples[0][1]["implementation"] == "CPython"
    assert m["python_gc_objects_collected_total"].value(generation="0") >= 0
    # Enqueue-to-commit buckets gather just above the reorder window (0.2 s here), where steady state sits.
    latency = m["processor_enqueue_to_commit_seconds"]
    bounds = [float(ls["le"]) for s, ls, _ in latency.samples if s.endswith("_bucket")]
    assert {0.25, 0.3, 0.45, 0.7, 1.2} <= set(bounds) and bounds[-1] == float("inf")
    assert [latency.value("_bucket", le=le) for le in ("0.3", "+Inf")] == [
        run.worker.enqueue_latency.buckets[run.worker.enqueue_latency.bounds.index(0.3)],
        run.worker.enqueue_latency.count,
    ]
    commits = [float(ls["le"]) for s, ls, _ in m["processor_store_commit_seconds"].samples if s.endswith("_bucket")]
    assert commits[0] == 0.0005 and 0.0025 in commits


async def test_metrics_speak_openmetrics_when_asked(run: Run):
    status, text, response = await run.client.get(
        "/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"}
    )
    assert status == 200 and response.headers["Content-Type"].startswith("application/openmetrics-text")
    families = {f.name: f for f in text_fd_to_metric_families(io.StringIO(text))}
    assert text.endswith("# EOF\n")
    read = families["processor_events_read"]
    assert read.type == "counter" and read.samples[0].value == run.worker.tally.read


async def test_partitions_and_summary_come_from_the_hub_and_the_worker(run: Run):
    view = await run.client.json("/api/partitions")
    assert view["source"] == "hub", view
    rows = {p["partition"]: p for p in view["partitions"]}
    assert sorted(rows) == list(PARTITIONS)
    for pid, row in rows.items():
        state = run.worker.partitions[pid]
        assert row["owner"] and row["here"] is True
        assert row["checkpoint_sequence_number"] == state.checkpointed[0]
        assert row["last_enqueued_sequence_number"] == state.last_enqueued
        assert row["lag"] == 0 and row["stalled"] is False
        assert row["last_received_sequence_number"] == state.progress.last_received

    summary = await run.client.json("/api/summary")
    assert summary["worker"]["events"] == run.worker.tally.summary()
    assert summary["worker"]["running"] is True and summary["worker"]["eventhub_name"] == "events"
    assert summary["worker"]["buffer"] == {"events": 0, "bytes": 0, "objects": 0}
    assert summary["objects"] == (await run.store.counts())["objects"]
    assert (await run.client.json("/readyz")) == {"ready": True}


async def test_dashboard_renders_partitions_counters_objects_and_dead_letters(run: Run, tmp_path):
    html = await render(run.client.url + "/", tmp_path / "profile")
    page = Elements(html)
    assert page.by_id("main") and page.found[0]["tag"] == "html"
    body = next(el for el in page.found if el["tag"] == "body")
    assert body["data-loaded"] == "true", page.by_id("error")["text"]
    assert page.by_id("status")["data-state"] == "ready"

    partitions = {el["data-partition"]: el for el in page.having("data-partition")}
    assert sorted(partitions) == list(PARTITIONS)
    for pid, row in partitions.items():
        assert row["data-owner"] and row["data-lag"] == "0"
        assert row["data-checkpoint"] == str(run.worker.partitions[pid].checkpointed[0])
        assert "this replica" in row["text"]

    counters = {el["data-counter"]: el for el in page.having("data-counter")}
    tally = run.worker.tally.summary()
    for name in ("read", "applied", "duplicate", "dead_lettered"):
        assert counters[name]["data-value"] == str(tally[name]), name
    assert counters["objects"]["data-value"] == str((await run.store.counts())["objects"])

    objects = page.having("data-object")
    recent = await run.store.recent(25)
    assert [el["data-object"] for el in objects] == [r.object for r in recent]
    assert all(el["data-object"] in el["text"] for el in objects)
    letters = page.having("data-dead-letter")
    assert len(letters) == 1 and "not JSON" in letters[0]["text"]


async def test_readiness_turns_503_when_the_worker_stops(tmp_path):
    async with worker_run(tmp_path) as r:

        async def ready() -> bool:
            return (await r.client.get("/readyz"))[0] == 200

        await until(ready, timeout=20, what="/readyz 200 once the consumer runs")
        r.stop.set()
        await asyncio.wait_for(r.task, 30)
        status, body, _ = await r.client.get("/readyz")
        assert status == 503 and body["ready"] is False and body["reason"].startswith("worker"), body
        assert (await r.client.get("/healthz"))[0] == 200
        assert (await r.client.get("/api/objects"))[0] == 200  # the store is still ours and open
