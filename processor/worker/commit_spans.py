"""A span per store commit, linked to the trace contexts of the producers whose events it made durable.

Two places carry a producer's context: the CloudEvents distributed-tracing extension on each event
(`traceparent`, `tracestate`), and the Event Hubs `Diagnostic-Id` application property on each message (what
the Azure SDKs' producers set; the feeder forwards it in `Delivery.diagnostic_id`). A commit holds events of
many messages and many traces, so they are links, not a parent. Only built when tracing is on: the worker
holds no `CommitSpans` otherwise, and nothing here runs (reading an event's extensions parses its message body
again).

Imports OpenTelemetry's API, the core's model types and the worker's partition state.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

from opentelemetry.trace import Link, SpanContext, SpanKind, Tracer, get_current_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from processor.core.model import Origin
from processor.core.reorder import Released
from processor.worker.partitions import PartitionState

# The OpenTelemetry SDK keeps 128 links per span by default (OTEL_SPAN_LINK_COUNT_LIMIT); past that it drops
# them anyway, so the contexts of a larger commit are not even parsed. The span says how many were left out.
MAX_LINKS = 128

_propagator = TraceContextTextMapPropagator()


def span_context(traceparent: object, tracestate: object = None) -> SpanContext | None:
    """The remote span context a W3C `traceparent` (and `tracestate`) names; None for anything else."""
    if not isinstance(traceparent, str):
        return None
    carrier = {"traceparent": traceparent}
    if isinstance(tracestate, str):
        carrier["tracestate"] = tracestate
    context = get_current_span(_propagator.extract(carrier)).get_span_context()
    return context if context.is_valid else None


class CommitSpans:
    def __init__(self, tracer: Tracer, hub: str):
        self.tracer = tracer
        self.hub = hub
        # (partition, generation) -> sequence number -> Diagnostic-Id, for messages not yet checkpointable.
        self._diagnostic: dict[tuple[str, int], dict[int, str]] = {}

    def diagnostic_ids(self, partition: str, generation: int) -> dict[int, str]:
        """Where `receive` puts the Diagnostic-Id of each message of this ownership of the partition."""
        return self._diagnostic.setdefault((partition, generation), {})

    def forget(self, partition: str) -> None:
        """The partition was closed: its messages' ids go (its next owner receives them again)."""
        for key in [key for key in self._diagnostic if key[0] == partition]:
            del self._diagnostic[key]

    def prune(self, partitions: Mapping[str, PartitionState]) -> None:
        """Drop the ids of messages that are done (at or below the checkpointable one): no commit needs them."""
        for (partition, generation), ids in self._diagnostic.items():
            state = partitions.get(partition)
            safe = state.progress.safe if state is not None and state.progress.generation == generation else None
            if safe is None or not ids:
                continue
            # Sequence numbers arrive in order, so the dict is sorted by them: drop from the front.
            for seq in list(ids):
                if seq > safe[0]:
                    break
                del ids[seq]

    def links(self, released: Released, dead: Iterable[Origin]) -> tuple[list[Link], int]:
        """The distinct producer contexts of the events and messages in a commit, at most MAX_LINKS, and how many
        more there were."""
        seen: dict[tuple[int, int], Link] = {}
        dropped = 0

        def add(context: SpanContext | None, source: str) -> None:
            nonlocal dropped
            if context is None:
                return
            key = (context.trace_id, context.span_id)
            if key in seen:
                return
            if len(seen) >= MAX_LINKS:
                dropped += 1
                return
            seen[key] = Link(context, {"processor.link.source": source})

        messages: set[tuple[str, int, int]] = set()
        for events in released.values():
            for ev in events:
                if len(seen) >= MAX_LINKS:
                    dropped += 1  # a bound on the work, counted as one: the span is already full
                    break
                ext = ev.event.extensions
                add(span_context(ext.get("traceparent"), ext.get("tracestate")), "cloudevents")
                if ev.origin is not None:
                    messages.add((ev.origin.partition, ev.origin.generation, ev.origin.sequence_number))
        messages.update((o.partition, o.generation, o.sequence_number) for o in dead)
        for partition, generation, seq in sorted(messages):
            diagnostic = self._diagnostic.get((partition, generation), {}).get(seq)
            if diagnostic is not None:
                add(span_context(diagnostic), "diagnostic-id")
        return list(seen.values()), dropped

    @contextmanager
    def span(self, released: Released, dead: list[Origin]) -> Iterator[None]:
        """A span around one commit of these events and dead-lettered messages; an exception that ends the commit
        is recorded on it."""
        links, dropped = self.links(released, dead)
        events = sum(len(v) for v in released.values())
        partitions = {ev.origin.partition for v in released.values() for ev in v if ev.origin is not None}
        partitions.update(origin.partition for origin in dead)
        attributes: dict[str, AttributeValue] = {
            "messaging.system": "eventhubs",
            "messaging.destination.name": self.hub,
            "messaging.operation.type": "process",
            "processor.events": events,
            "processor.objects": len(released),
            "processor.dead_lettered_messages": len(dead),
            "processor.partitions": sorted(partitions),
            "processor.links_dropped": dropped,
        }
        with self.tracer.start_as_current_span(
            f"commit {self.hub}", kind=SpanKind.CONSUMER, links=links, attributes=attributes
        ):
            yield
