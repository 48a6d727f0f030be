"""The feeder's wire: how the worker and its feeder process talk, defined once and imported by both ends.

The worker (`processor.worker.feed`) starts the feeder (`processor.hub.feeder`) as a child process and hands it
its settings in the environment (`ENV`, `settings_to_env`). The feeder answers on its stdout with frames:

    Opened(partition)                        the SDK opened a partition (on_partition_initialize)
    Closed(partition, lost)                  it closed one; lost: another owner took it
    Batch(partition, last_enqueued, deliveries)   one received batch, each message a `Delivery`
    Error(text, missing, partition)          the SDK reported an error (on_error, or receiving stopped)

each as a 4-byte big-endian length and a msgpack array: the frame's tag, then its fields in the order above
(msgspec structs with `array_like`: no field names on the wire, so a frame costs what a positional list did).
E.g. `["batch", "0", 41, [[40, "8160", b"{...}", "Notification", 1700000000.25, None, None]]]`.

On the feeder's stdin the worker writes `STOP` for a graceful stop (close the client, releasing ownership);
end of file there means the worker is gone, and the feeder exits at once, as a crash would.

A replay (`processor.replay`) starts feeders in the fixed-partitions mode: the settings name the partitions,
each with a `Span` (where to start, the last sequence number to forward). Such a feeder reads only those,
with no load balancing and no checkpoint store, forwards nothing past a span's end, sends `Closed(partition,
False)` when a partition reached its end, and exits 0 once all did (or on `STOP`).

Imports msgspec and `processor.config` (the settings) only.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any, Literal

import msgspec

from processor.config import Settings, settings_from_json, settings_to_json

ENV = "PROCESSOR_FEEDER_SETTINGS"  # the variable holding the feeder's settings
STOP = b"stop\n"
_HEADER = struct.Struct(">I")
HEADER_SIZE = _HEADER.size


class Delivery(msgspec.Struct, array_like=True, gc=False):
    """One message as the hub delivered it."""

    sequence_number: int
    offset: str
    body: bytes  # the data section; for any other AMQP body section, a printable rendering of it
    kind: str | None  # Event Grid's `aeg-event-type` application property (Notification, SubscriptionValidation...)
    enqueued: float | None  # the hub's enqueue time, epoch seconds
    section: str | None  # None: a data section; else the AMQP body type ("value", "sequence"): not an event
    # The producer's trace context (W3C traceparent) from the `Diagnostic-Id` application property; forwarded
    # only when the worker traces (see `settings_to_env`), else None.
    diagnostic_id: str | None = None


class Opened(msgspec.Struct, tag="open", array_like=True):
    partition: str


class Closed(msgspec.Struct, tag="close", array_like=True):
    partition: str
    lost: bool  # the ownership was taken by another consumer (not a close of our own)


class Batch(msgspec.Struct, tag="batch", array_like=True):
    partition: str
    last_enqueued: int | None  # the partition's last enqueued sequence number, as the hub reported it
    deliveries: list[Delivery]


class Error(msgspec.Struct, tag="error", array_like=True):
    text: str  # where (a partition, load balancing, receiving) and the error
    # The service said the hub or the consumer group does not exist (the SDK retries that forever); None: any
    # other error, which the SDK retries and may recover from.
    missing: Literal["hub", "consumer group"] | None
    partition: str | None  # the partition whose receiver failed; None for load balancing


Frame = Opened | Closed | Batch | Error


class Span(msgspec.Struct, frozen=True):
    """What a fixed-partitions feeder reads of one partition."""

    end: int  # the last sequence number to forward (the partition's last enqueued one when the replay began)
    after: int | None = None  # start just after this sequence number; None: at the settings' starting position


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Frame)


def encode_frame(frame: Frame) -> bytearray:
    """The frame with its length header, ready to write."""
    out = bytearray(_HEADER.size)
    _encoder.encode_into(frame, out, _HEADER.size)
    _HEADER.pack_into(out, 0, len(out) - _HEADER.size)
    return out


async def read_frame(stream: asyncio.StreamReader) -> Frame | None:
    """The next frame, or None when the feeder's stdout has ended (the process exited)."""
    try:
        header = await stream.readexactly(HEADER_SIZE)
        return decode_frame(await stream.readexactly(frame_length(header)))
    except asyncio.IncompleteReadError:
        return None


def frame_length(header: bytes) -> int:
    """The length of the frame that follows this header (`HEADER_SIZE` bytes), for a reader of its own."""
    length: int = _HEADER.unpack(header)[0]
    return length


def decode_frame(data: bytes) -> Frame:
    """A frame from the bytes that followed its header."""
    return _decoder.decode(data)


def settings_to_env(
    settings: Settings, consumer_group: str, diagnostic_ids: bool = False, partitions: dict[str, Span] | None = None
) -> str:
    """`diagnostic_ids`: forward each message's Diagnostic-Id (the worker traces its commits). `partitions`: the
    fixed-partitions mode, reading these partitions over these spans (see above); None: load balancing."""
    doc: dict[str, Any] = {
        "settings": settings_to_json(settings),
        "consumer_group": consumer_group,
        "diagnostic_ids": diagnostic_ids,
    }
    if partitions is not None:
        doc["partitions"] = partitions
    return msgspec.json.encode(doc).decode()


def partitions_from_env(text: str) -> dict[str, Span] | None:
    """The fixed partitions `settings_to_env` was given, or None (load balancing)."""
    return msgspec.json.decode(text, type=_FixedDoc).partitions


class _FixedDoc(msgspec.Struct):
    partitions: dict[str, Span] | None = None


def settings_from_env(text: str) -> tuple[Settings, str, bool]:
    doc: dict[str, Any] = msgspec.json.decode(text)
    return settings_from_json(doc["settings"]), doc["consumer_group"], bool(doc.get("diagnostic_ids"))
