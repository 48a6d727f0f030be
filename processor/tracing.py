"""Tracing set-up: an OpenTelemetry tracer provider and exporter as the settings say, once per process.

`PROCESSOR_TRACING_EXPORTER` is `none` by default: no provider, no spans, nothing imported. `otlp` exports over
OTLP/HTTP (protobuf) to `PROCESSOR_TRACING_OTLP_ENDPOINT`, else to what the standard `OTEL_EXPORTER_OTLP_*`
variables say; `azure_monitor` hands the set-up to the Azure Monitor distro (`azure-monitor-opentelemetry`),
traces only, with `PROCESSOR_TRACING_CONNECTION_STRING` or `APPLICATIONINSIGHTS_CONNECTION_STRING`. Either
way the Azure SDK's own spans (send, receive, process) go through `azure-core-tracing-opentelemetry` into the
same provider. The standard `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_TRACES_SAMPLER*`
variables apply.

The worker process and its feeder each call `start_tracing`; the spans of each are exported by its own
provider. Imports the settings and, only when tracing is on, OpenTelemetry.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from processor.config import Settings

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

log = logging.getLogger(__name__)

SERVICE_NAME = "processor"
_started: TracerProvider | None = None


def start_tracing(settings: Settings) -> TracerProvider | None:
    """The process's tracer provider as the settings make it (None: tracing off). Made once per process: the
    OpenTelemetry API allows one global provider, so a second call returns the first one."""
    global _started
    if settings.tracing_exporter == "none":
        return None
    if _started is not None:
        return _started
    from azure.core.settings import settings as azure_settings
    from opentelemetry import trace

    if settings.tracing_exporter == "azure_monitor":
        from azure.monitor.opentelemetry import configure_azure_monitor

        options: dict[str, object] = {}
        if settings.tracing_connection_string:
            options["connection_string"] = settings.tracing_connection_string
        # Traces only: metrics have /metrics, logs go to stderr for the cluster's collector. The distro reads
        # its disable_logging / disable_metrics from these variables alone (its arguments are overwritten: seen
        # in 1.8, every log line went to the ingestion endpoint), so they are set unless the operator set them.
        os.environ.setdefault("OTEL_LOGS_EXPORTER", "none")
        os.environ.setdefault("OTEL_METRICS_EXPORTER", "none")
        # None of the distro's web-framework instrumentations (nothing here uses them), only the Azure SDK's.
        configure_azure_monitor(
            enable_live_metrics=False,
            enable_performance_counters=False,
            instrumentation_options={name: {"enabled": name == "azure_sdk"} for name in _DISTRO_INSTRUMENTATIONS},
            **options,
        )
        _started = trace.get_tracer_provider()
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import OTEL_SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        # Resource.create reads OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME over this default name.
        resource = Resource.create({} if os.environ.get(OTEL_SERVICE_NAME) else {"service.name": SERVICE_NAME})
        provider = SdkTracerProvider(resource=resource)
        # The setting is the collector's base URL, as OTEL_EXPORTER_OTLP_ENDPOINT is; the path is the signal's.
        base = settings.tracing_otlp_endpoint
        endpoint = base.rstrip("/") + "/v1/traces" if base else None
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
        trace.set_tracer_provider(provider)
        _started = provider
    # The Azure SDK's spans (EventHubs.send / receive / process, blob checkpoint calls) into the same provider.
    azure_settings.tracing_implementation = "opentelemetry"
    log.info("tracing on: exporting spans with %s", settings.tracing_exporter)
    return _started


def flush_tracing(provider: TracerProvider | None, timeout: float = 5.0) -> None:
    """Export what the provider holds (at the end of a run; the provider itself shuts down at exit)."""
    flush = getattr(provider, "force_flush", None)
    if flush is not None:
        flush(int(timeout * 1000))


# The distro's instrumentations by library name; all but the Azure SDK's are turned off.
_DISTRO_INSTRUMENTATIONS = (
    "azure_sdk",
    "django",
    "fastapi",
    "flask",
    "psycopg2",
    "requests",
    "urllib",
    "urllib3",
)
