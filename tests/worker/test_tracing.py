"""Tracing: a span per store commit, linked to the producers' contexts from the CloudEvents `traceparent` /
`tracestate` extension and from the Event Hubs `Diagnostic-Id` property; messages sent by the real SDK producer
to the local hub, the real worker (and its feeder) consuming them, spans in OpenTelemetry's in-memory exporter;
and `processor run` exporting its own and the Azure SDK's spans over OTLP/HTTP to a collector of the test's."""

from __future__ import annotations

import asyncio
import gzip
import json
import signal

from aiohttp import web
from azure.eventhub import EventData
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from processor.hub.clients import producer_client
from processor.worker.app import WorkerOptions, run_worker
from tests.builders import STORAGE, body, ce, storage_subject
from tests.worker.helpers import clean_env, projection, until, worker_settings
from tests.worker.processes import finish, read_until, spawn

# Producers' contexts: (trace id, span id) as W3C traceparents write them.
T1 = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
T2 = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
D1 = ("11111111111111111111111111111111", "2222222222222222")
D2 = ("33333333333333333333333333333333", "4444444444444444")
D3 = ("55555555555555555555555555555555", "6666666666666666")


def traceparent(ids: tuple[str, str]) -> str:
    return f"00-{ids[0]}-{ids[1]}-01"


def blob(path: str, seq: str, **extensions: str) -> dict:
    data = {"api": "PutBlob", "sequencer": seq, "eTag": f"0x{seq}", "url": f"https://acct1.blob/c/{path}"}
    return ce("Microsoft.Storage.BlobCreated", storage_subject(path), data, source=STORAGE, **extensions)


def messages() -> list[EventData]:
    """What the producers sent: contexts in CloudEvents extensions, in Diagnostic-Id, in both, in neither, in
    a malformed body (dead-lettered, its Diagnostic-Id still linked), and one unreadable traceparent."""

    def message(payload: bytes, diagnostic: tuple[str, str] | None = None) -> EventData:
        event = EventData(payload)
        if diagnostic is not None:
            event.properties = {"Diagnostic-Id": traceparent(diagnostic)}
        return event

    return [
        message(body(blob("a.txt", "01", traceparent=traceparent(T1), tracestate="congo=t61rcWkgMzE")), D1),
        message(body(blob("b.txt", "02", traceparent=traceparent(T2)))),
        message(body(blob("c.txt", "03")), D2),
        message(body(blob("d.txt", "04", traceparent="00-not-a-trace-context-01"))),
        message(b"{not json", D3),
    ]


def linked(spans) -> dict[tuple[str, str], str]:
    """Every link of the commit spans: (trace id, span id) in hex -> where the worker found it."""
    out = {}
    for span in spans:
        for link in span.links:
            ids = (format(link.context.trace_id, "032x"), format(link.context.span_id, "016x"))
            out[ids] = link.attributes["processor.link.source"]
    return out


async def run_until_committed(settings, options: WorkerOptions, sent: list[EventData]) -> list:
    """Send `sent` to partition 0 with the real producer, run the worker until every message is done (applied or
    dead-lettered: its partition's progress has passed the last); the deliveries the worker received."""
    received: list = []
    workers: list = []
    previous = options.on_started

    def started(worker) -> None:
        workers.append(worker)
        receive = worker.receive

        async def recording(partition_id, deliveries, last_enqueued=None):
            received.extend(deliveries)
            await receive(partition_id, deliveries, last_enqueued)

        worker.receive = recording  # before its first frame: the feed looks the method up per frame
        if previous is not None:
            previous(worker)

    options.on_started = started
    async with producer_client(settings) as producer:
        batch = await producer.create_batch(partition_id="0")
        for event in sent:
            batch.add(event)
        await producer.send_batch(batch)

    def all_done() -> bool:
        state = workers[0].partitions.get("0") if workers else None
        safe = state.progress.safe if state is not None else None
        return len(received) == len(sent) and safe is not None and safe[0] == received[-1].sequence_number

    stop = asyncio.Event()
    running = asyncio.create_task(run_worker(settings, stop, options))
    try:
        await until(lambda: all_done() or running.done(), 60, "every message applied or dead-lettered")
    finally:
        stop.set()
        await running
    objects = [k for k in await projection(settings.store_url) if not k[1].endswith("/containers/c")]
    assert len(objects) == 4  # beside the blobs' container row
    return received


async def test_each_commit_span_links_the_producers_cloudevents_and_diagnostic_id_contexts(devhub, tmp_path):
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = worker_settings(devhub, tmp_path)
    received = await run_until_committed(settings, WorkerOptions(tracer_provider=provider), messages())

    assert [d.diagnostic_id for d in received] == [traceparent(D1), None, traceparent(D2), None, traceparent(D3)]
    spans = [s for s in exporter.get_finished_spans() if s.name == "commit events"]
    assert spans, [s.name for s in exporter.get_finished_spans()]
    assert linked(spans) == {
        T1: "cloudevents",
        T2: "cloudevents",
        D1: "diagnostic-id",
        D2: "diagnostic-id",
        D3: "diagnostic-id",
    }
    (with_state,) = [link for s in spans for link in s.links if link.context.trace_id == int(T1[0], 16)]
    assert with_state.context.trace_state.get("congo") == "t61rcWkgMzE" and with_state.context.is_remote
    assert sum(s.attributes["processor.events"] for s in spans) == 4
    assert sum(s.attributes["processor.dead_lettered_messages"] for s in spans) == 1
    assert all(s.attributes["processor.partitions"] == ("0",) for s in spans)


async def test_without_tracing_no_diagnostic_id_crosses_the_pipe_and_the_worker_makes_no_spans(devhub, tmp_path):
    settings = worker_settings(devhub, tmp_path)
    workers: list = []
    received = await run_until_committed(settings, WorkerOptions(on_started=workers.append), messages())
    assert settings.tracing_exporter == "none"
    assert [d.diagnostic_id for d in received] == [None] * 5
    assert workers[0].spans is None


class Collector:
    """An OTLP/HTTP trace receiver: what a collector would be sent, decoded with OpenTelemetry's protobufs."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, object]] = []  # (service.name, span)

    async def receive(self, request: web.Request) -> web.Response:
        export = ExportTraceServiceRequest.FromString(await request.read())
        for resource_spans in export.resource_spans:
            attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                self.spans.extend((attrs.get("service.name", ""), span) for span in scope_spans.spans)
        return web.Response(content_type="application/x-protobuf", body=b"")

    def named(self, name: str) -> list:
        return [span for _, span in self.spans if span.name == name]


def proto_links(span) -> set[tuple[str, str]]:
    return {(link.trace_id.hex(), link.span_id.hex()) for link in span.links}


async def test_processor_run_exports_its_commit_spans_and_the_sdk_spans_over_otlp(devhub, tmp_path):
    collector = Collector()
    app = web.Application()
    app.router.add_post("/v1/traces", collector.receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    settings = worker_settings(devhub, tmp_path)
    env = {
        **clean_env(),
        "PROCESSOR_EVENTHUB_CONNECTION_STRING": settings.eventhub_connection_string,
        "PROCESSOR_STORE_URL": settings.store_url,
        "PROCESSOR_CHECKPOINT_URL": settings.checkpoint_url,
        "PROCESSOR_LOAD_BALANCING_INTERVAL": "0.5",
        "PROCESSOR_REORDER_WINDOW": "0.2",
        "PROCESSOR_TRACING_EXPORTER": "otlp",
        "PROCESSOR_TRACING_OTLP_ENDPOINT": f"http://127.0.0.1:{port}",
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # export every 0.1 s rather than 5
    }
    try:
        proc = await spawn("run", "--no-http", env=env, cwd=tmp_path)
        try:
            await read_until(proc, "opened", 60)
            async with producer_client(settings) as producer:
                batch = await producer.create_batch(partition_id="0")
                batch.add(messages()[0])  # T1 in the CloudEvent, D1 in Diagnostic-Id
                await producer.send_batch(batch)
            await until(
                lambda: any(proto_links(s) >= {T1, D1} for s in collector.named("commit events")), 60, "a commit span"
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            code, _, rest = await finish(proc, 60)
        assert code == 0, rest[-3000:]
    finally:
        await runner.cleanup()
    services = {service for service, _ in collector.spans}
    assert services == {"processor"}, services
    # The feeder's SDK consumer traced its receive and process through azure-core-tracing-opentelemetry, linked
    # to the message's context as the SDK reads it (its Diagnostic-Id).
    processed = collector.named("EventHubs.process")
    assert any(D1 in proto_links(s) for s in processed), [s.name for _, s in collector.spans]


async def test_processor_run_sends_its_spans_to_azure_monitor_at_the_connection_strings_ingestion_endpoint(
    devhub, tmp_path
):
    envelopes: list[dict] = []

    async def track(request: web.Request) -> web.Response:
        raw = await request.read()
        text = (gzip.decompress(raw) if request.headers.get("Content-Encoding") == "gzip" else raw).decode()
        items = json.loads(text) if text.lstrip().startswith("[") else [json.loads(line) for line in text.splitlines()]
        envelopes.extend(items)
        return web.json_response({"itemsReceived": len(items), "itemsAccepted": len(items), "errors": []})

    app = web.Application()
    app.router.add_post("/v2.1/track", track)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    settings = worker_settings(devhub, tmp_path)
    key = "00000000-0000-0000-0000-000000000001"
    env = {
        **clean_env(),
        "PROCESSOR_EVENTHUB_CONNECTION_STRING": settings.eventhub_connection_string,
        "PROCESSOR_STORE_URL": settings.store_url,
        "PROCESSOR_CHECKPOINT_URL": settings.checkpoint_url,
        "PROCESSOR_LOAD_BALANCING_INTERVAL": "0.5",
        "PROCESSOR_REORDER_WINDOW": "0.2",
        "PROCESSOR_TRACING_EXPORTER": "azure_monitor",
        "PROCESSOR_TRACING_CONNECTION_STRING": f"InstrumentationKey={key};IngestionEndpoint=http://127.0.0.1:{port}",
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",  # its own usage telemetry goes to Microsoft: no network
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }

    def commits() -> list[dict]:
        return [e for e in envelopes if e.get("data", {}).get("baseData", {}).get("name") == "commit events"]

    try:
        proc = await spawn("run", "--no-http", env=env, cwd=tmp_path)
        try:
            await read_until(proc, "opened", 60)
            async with producer_client(settings) as producer:
                batch = await producer.create_batch(partition_id="0")
                batch.add(messages()[0])
                await producer.send_batch(batch)
            await until(lambda: commits(), 60, "a commit span at the ingestion endpoint")
        finally:
            proc.send_signal(signal.SIGTERM)
            code, _, rest = await finish(proc, 60)
        assert code == 0, rest[-3000:]
    finally:
        await runner.cleanup()
    assert all(e["iKey"] == key for e in envelopes)
    # Traces only: the log lines stay on stderr (no Message envelopes), metrics on /metrics.
    kinds = {e["name"].rsplit(".", 1)[-1] for e in envelopes}
    assert {"Request", "RemoteDependency"} <= kinds and "Message" not in kinds, kinds
    data = commits()[0]["data"]["baseData"]
    assert data["properties"]["processor.events"] == "1", data
    # Application Insights keeps a span's links as a JSON list in the _MS.links property.
    links = {(link["operation_Id"], link["id"]) for link in json.loads(data["properties"]["_MS.links"])}
    assert links == {T1, D1}, links
