"""The feeder: a child process that runs the SDK consumer and forwards what it receives to the worker.

Why a process of its own: the azure-eventhub consumer costs ~115 µs of CPU per event in pure Python, and so
does our pipeline; in one process they share one core under the GIL. Split, each has its own. The feeder
only receives and forwards; the worker (the parent) decodes, projects, commits and checkpoints, so a
checkpoint still follows the commit.

What goes over the pipes (the settings in, frames out on stdout, the stop command in on stdin) is defined in
`processor.hub.wire`, which the worker imports too. A replay's feeders read fixed partitions instead of
balancing them (`processor.hub.fixed`, which shares this module's parts). Imports the SDK and the
hub's other adapters.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from azure.eventhub import CloseReason, EventData
from azure.eventhub.aio import PartitionContext
from azure.eventhub.amqp import AmqpMessageBodyType

from processor.config import Settings
from processor.hub.wire import (
    ENV,
    STOP,
    Batch,
    Closed,
    Delivery,
    Error,
    Frame,
    Opened,
    encode_frame,
    settings_from_env,
)
from processor.runtime import configure_logging
from processor.tracing import start_tracing

log = logging.getLogger("processor.feeder")


def delivery_kind(properties: dict[Any, Any] | None) -> str | None:
    """Event Grid's `aeg-event-type` application property (Notification, SubscriptionValidation, ...).

    A value that is not text (any producer may set the property) is None: it names no control message of
    Event Grid's, which is all the worker asks of it, and the frame stays of its declared type."""
    return _text_property(properties, b"aeg-event-type")


def diagnostic_id(properties: dict[Any, Any] | None) -> str | None:
    """The `Diagnostic-Id` application property: the producer's trace context, as the Azure SDKs set it (W3C
    traceparent). Only text is kept; the worker parses it when it makes its commit span."""
    return _text_property(properties, b"Diagnostic-Id")


def _text_property(properties: dict[Any, Any] | None, name: bytes) -> str | None:
    if not properties:
        return None
    value = properties.get(name, properties.get(name.decode()))
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


# What is kept of a value or sequence body for its dead letter.
MAX_RENDERED_BODY = 4096


def message_body(event: EventData) -> tuple[bytes, str | None]:
    """The message body, and None; or, for an AMQP value or sequence body (Event Grid only ever writes data
    sections), a printable rendering of it and the section's kind, for the worker to dead-letter."""
    raw = event.raw_amqp_message
    if raw.body_type != AmqpMessageBodyType.DATA:
        return repr(raw.body)[:MAX_RENDERED_BODY].encode("utf-8", "backslashreplace"), str(raw.body_type.value)
    body: Any = event.body  # bytes, or a data section per part (the SDK types it as any AMQP value)
    if isinstance(body, (bytes, bytearray, memoryview)):
        return bytes(body), None
    if isinstance(body, str):
        return body.encode(), None
    return b"".join(bytes(part) for part in body), None


def to_delivery(e: EventData, diagnostic_ids: bool) -> Delivery:
    # The raw annotations (public through raw_amqp_message) spare the per-event datetime and decoding the
    # convenience properties do: this is the feeder's whole cost per event beside the SDK's own.
    raw = e.raw_amqp_message
    ann: dict[bytes, Any] = raw.annotations  # type: ignore[assignment]  # a received message has them
    offset = ann[b"x-opt-offset"]
    stamp = ann.get(b"x-opt-enqueued-time")
    body, section = message_body(e)
    properties = raw.application_properties
    return Delivery(
        ann[b"x-opt-sequence-number"],
        offset.decode() if isinstance(offset, bytes) else offset,
        body,
        delivery_kind(properties),
        stamp / 1000 if stamp is not None else None,
        section,
        diagnostic_id(properties) if diagnostic_ids else None,
    )


async def stdout_sender() -> Callable[[Frame], Awaitable[None]]:
    """`send(frame)` onto stdout, for the parent."""
    loop = asyncio.get_running_loop()
    out = os.fdopen(sys.stdout.fileno(), "wb", buffering=0, closefd=False)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, out)
    writer = asyncio.StreamWriter(transport, protocol, None, loop)

    async def send(frame: Frame) -> None:
        writer.write(encode_frame(frame))
        await writer.drain()  # the parent reads slower: the SDK stops pulling, which is the backpressure

    return send


async def parent_command() -> asyncio.Task[bytes]:
    """The parent's command on stdin: `STOP`, or end of file when it is gone."""
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return asyncio.create_task(reader.readline())


def error_frame(context: PartitionContext | None, error: Exception) -> Error:
    """What the SDK's on_error reported, for the parent."""
    from processor.hub.clients import not_found

    where = f"partition {context.partition_id}" if context is not None else "load balancing"
    # Load balancing asks the hub for its partitions: its not-found is the hub's. A partition's receiver names
    # the consumer group as well, and is only started once the hub has answered: its not-found is the group's.
    missing: Literal["hub", "consumer group"] | None = None
    if not_found(error):
        missing = "consumer group" if context is not None else "hub"
    return Error(f"{where}: {error!r}", missing, context.partition_id if context is not None else None)


async def feed(settings: Settings, group: str, diagnostic_ids: bool = False) -> int:
    from processor.hub.checkpoints import close_checkpoint_store, open_checkpoint_store
    from processor.hub.clients import consumer_client, starting_position

    send = await stdout_sender()
    checkpoints = await open_checkpoint_store(settings)
    client = consumer_client(settings, checkpoints, group)

    async def on_batch(context: PartitionContext, events: list[EventData]) -> None:
        props = context.last_enqueued_event_properties or {}
        deliveries = [to_delivery(e, diagnostic_ids) for e in events]
        await send(Batch(context.partition_id, props.get("sequence_number"), deliveries))

    async def on_open(context: PartitionContext) -> None:
        await send(Opened(context.partition_id))

    async def on_close(context: PartitionContext, reason: CloseReason) -> None:
        await send(Closed(context.partition_id, reason == CloseReason.OWNERSHIP_LOST))

    async def on_error(context: PartitionContext | None, error: Exception) -> None:
        await send(error_frame(context, error))

    receiving = asyncio.create_task(
        client.receive_batch(
            on_batch,
            max_batch_size=settings.max_batch_size,
            prefetch=settings.prefetch,
            starting_position=starting_position(settings),
            track_last_enqueued_event_properties=True,
            on_partition_initialize=on_open,
            on_partition_close=on_close,
            on_error=on_error,
        )
    )

    command = await parent_command()
    done, _ = await asyncio.wait([receiving, command], return_when=asyncio.FIRST_COMPLETED)
    if command in done and command.result() != STOP:
        os._exit(3)  # the parent died: behave as a crash, release nothing
    if receiving in done and receiving.exception() is not None:
        await send(Error(f"receiving stopped: {receiving.exception()!r}", None, None))
        return 1
    await client.close()  # releases ownership; the parent has committed and checkpointed already
    await close_checkpoint_store(checkpoints)
    return 0


def prepare() -> tuple[Settings, str, bool]:
    """The process's set-up, from the settings the parent handed over: (settings, consumer group, forward
    Diagnostic-Ids)."""
    # The parent decides when to stop; a Ctrl-C in the terminal reaches it, and it tells us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    settings, group, diagnostic_ids = settings_from_env(os.environ[ENV])
    # The level and format the worker resolved (file or variable), not the variables alone.
    configure_logging(settings.log_level, settings.log_format)
    # The SDK's receive and process spans are made here, in the process that runs the consumer.
    start_tracing(settings)
    # The SDK warns of each error on every retry (every load-balancing round, per partition); each also goes to
    # on_error, and the worker reports a run of them once, or, for a missing hub, at a steady pace.
    logging.getLogger("azure.eventhub.aio._eventprocessor.event_processor").setLevel(logging.ERROR)
    return settings, group, diagnostic_ids


def main() -> int:
    return asyncio.run(feed(*prepare()))


if __name__ == "__main__":
    sys.exit(main())
