"""Reading the messages producers send and writing the annotated form consumers receive.

A message is kept as the client's own encoded sections. Only the message-annotations map is
rebuilt (the hub stamps sequence number, offset and enqueued time into it) and the
delivery-annotations map re-encoded; every other section is copied byte for byte, so application
properties, footers and bodies of any AMQP type survive intact. Delivery annotations are kept as
the service keeps them (the SDK's own live test reads them back); a consumer that tracks
last-enqueued-event properties gets the hub's entries merged into them.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

from . import frames as F
from .codec import DecodeError, Described, Int, Symbol, Timestamp, decode, decode_map_raw, encode, skip

BATCH_FORMAT = 0x80013700

X_OPT_SEQUENCE_NUMBER = "x-opt-sequence-number"
X_OPT_OFFSET = "x-opt-offset"
X_OPT_ENQUEUED_TIME = "x-opt-enqueued-time"
X_OPT_PARTITION_KEY = "x-opt-partition-key"
_STAMPED = frozenset((X_OPT_SEQUENCE_NUMBER, X_OPT_OFFSET, X_OPT_ENQUEUED_TIME))

_U32 = struct.Struct(">I")
_SIZE_COUNT32 = struct.Struct(">II")


class Section(NamedTuple):
    code: int
    start: int  # first byte of the section (its descriptor)
    value_start: int
    end: int


def sections(buf: bytes | memoryview) -> list[Section]:
    """Locate the sections of an encoded message without decoding their values."""
    out = []
    pos = 0
    size = len(buf)
    while pos < size:
        if buf[pos] != 0x00:
            raise DecodeError("message section is not a described type")
        if buf[pos + 1] == 0x53:
            code, value_start = buf[pos + 2], pos + 3
        else:
            descriptor, value_start = decode(buf, pos + 1)
            code = int(descriptor) & 0xFF if isinstance(descriptor, int) else _SYMBOLIC.get(descriptor, 0)
        end = skip(buf, value_start)
        out.append(Section(code, pos, value_start, end))
        pos = end
    return out


_SYMBOLIC = {
    "amqp:header:list": F.HEADER,
    "amqp:delivery-annotations:map": F.DELIVERY_ANNOTATIONS,
    "amqp:message-annotations:map": F.MESSAGE_ANNOTATIONS,
    "amqp:properties:list": F.PROPERTIES,
    "amqp:application-properties:map": F.APPLICATION_PROPERTIES,
    "amqp:data:binary": F.DATA,
    "amqp:amqp-sequence:list": F.AMQP_SEQUENCE,
    "amqp:amqp-value:*": F.AMQP_VALUE,
    "amqp:footer:map": F.FOOTER,
}


def _binary_value(buf, pos: int) -> bytes:
    code = buf[pos]
    if code == 0xA0:
        return bytes(buf[pos + 2 : pos + 2 + buf[pos + 1]])
    if code == 0xB0:
        length = _U32.unpack_from(buf, pos + 1)[0]
        return bytes(buf[pos + 5 : pos + 5 + length])
    raise DecodeError("batch data section is not binary")


def split_batch(buf: bytes | memoryview) -> tuple[list[bytes], str | None]:
    """Inner messages of a batch (format 0x80013700) and the outer partition key, if any."""
    inner = []
    key = None
    for sec in sections(buf):
        if sec.code == F.DATA:
            inner.append(_binary_value(buf, sec.value_start))
        elif sec.code == F.MESSAGE_ANNOTATIONS:
            key = partition_key_of(buf, sec)
    return inner, key


def partition_key_of(buf, sec: Section) -> str | None:
    entries, _ = decode_map_raw(buf, sec.value_start)
    for k, raw in entries:
        if k == X_OPT_PARTITION_KEY:
            value, _ = decode(raw, 0)
            if isinstance(value, bytes):
                return value.decode("utf-8", "replace")
            return None if value is None else str(value)
    return None


def message_partition_key(buf: bytes | memoryview) -> str | None:
    for sec in sections(buf):
        if sec.code == F.MESSAGE_ANNOTATIONS:
            return partition_key_of(buf, sec)
    return None


def _encode_map_entries(entries: list[tuple[Any, bytes]]) -> bytes:
    body = b"".join(encode(k) + raw for k, raw in entries)
    count = 2 * len(entries)
    if len(body) + 1 < 256 and count < 256:
        return bytes((0xC1, len(body) + 1, count)) + body
    return b"\xd1" + _SIZE_COUNT32.pack(len(body) + 4, count) + body


_STAMP_KEYS = (encode(Symbol(X_OPT_SEQUENCE_NUMBER)), encode(Symbol(X_OPT_OFFSET)), encode(Symbol(X_OPT_ENQUEUED_TIME)))
_PKEY_SYMBOL = Symbol(X_OPT_PARTITION_KEY)
_DA_HEAD = b"\x00\x53\x71"  # described (small ulong) delivery-annotations section


def annotate(
    buf: bytes | memoryview, sequence_number: int, offset: int, enqueued_ms: int, partition_key: str | None
) -> tuple[bytes, int]:
    """Build the stored, delivered form of a message.

    Returns (message bytes, split): `split` is where delivery annotations go when a consumer
    asked for last-enqueued-event properties (right after the header, as the spec orders them).
    """
    header = delivery = b""
    entries: list[tuple[Any, bytes]] = []
    rest = []
    for sec in sections(buf):
        code = sec.code
        if code == F.HEADER:
            header = bytes(buf[sec.start : sec.end])
        elif code == F.MESSAGE_ANNOTATIONS:
            entries, _ = decode_map_raw(buf, sec.value_start)
            entries = [(k, raw) for k, raw in entries if k not in _STAMPED]
        elif code == F.DELIVERY_ANNOTATIONS:
            # Re-encoded under the short descriptor, so that delivered() finds them at `split`.
            own, _ = decode_map_raw(buf, sec.value_start)
            delivery = _DA_HEAD + _encode_map_entries(own) if own else b""
        else:
            rest.append(buf[sec.start : sec.end])
    if partition_key is not None and not any(k == X_OPT_PARTITION_KEY for k, _ in entries):
        entries.append((_PKEY_SYMBOL, encode(partition_key)))
    body = b"".join(encode(k) + raw for k, raw in entries)
    body += (
        _STAMP_KEYS[0]
        + encode(sequence_number)
        + _STAMP_KEYS[1]
        + encode(str(offset))
        + _STAMP_KEYS[2]
        + encode(Timestamp(enqueued_ms))
    )
    count = 2 * len(entries) + 6
    if len(body) + 1 < 256:
        ma = b"\x00\x53\x72" + bytes((0xC1, len(body) + 1, count)) + body
    else:
        ma = b"\x00\x53\x72\xd1" + _SIZE_COUNT32.pack(len(body) + 4, count) + body
    return header + delivery + ma + b"".join(rest), len(header)


def delivered(stored: bytes, split: int, annotations: bytes) -> bytes:
    """A stored message with the hub's delivery-annotations section (`annotations`) at `split`.

    The message's own delivery annotations, if any, are kept beside the hub's entries (the hub's win
    on a shared key): one message carries at most one section of a kind.
    """
    if stored[split : split + 3] != _DA_HEAD:
        return stored[:split] + annotations + stored[split:]
    own, end = decode_map_raw(stored, split + 3)
    hubs, _ = decode_map_raw(annotations, 3)
    keys = {k for k, _ in hubs}
    merged = [(k, raw) for k, raw in own if k not in keys] + hubs
    return stored[:split] + _DA_HEAD + _encode_map_entries(merged) + stored[end:]


# --------------------------------------------------------------------------- request / reply messages


class Request(NamedTuple):
    message_id: Any
    reply_to: str | None
    application_properties: dict
    body: Any


def parse_request(buf: bytes | memoryview) -> Request:
    """Fully decode a (small) $cbs / $management request."""
    message_id = reply_to = body = None
    props: dict = {}
    for sec in sections(buf):
        value, _ = decode(buf, sec.value_start)
        if sec.code == F.PROPERTIES and isinstance(value, list):
            message_id = value[0] if value else None
            reply_to = value[4] if len(value) > 4 else None
        elif sec.code == F.APPLICATION_PROPERTIES and isinstance(value, dict):
            props = {str(k): v for k, v in value.items()}
        elif sec.code == F.AMQP_VALUE:
            body = value
        elif sec.code == F.DATA:
            body = value
    return Request(message_id, reply_to, props, body)


def reply(correlation_id: Any, status: int, description: str, body: Any = None) -> bytes:
    properties = [None, None, None, None, None, correlation_id, None, None, None, None, None, None, None]
    app = {"status-code": Int(status), "status-description": description, "statusDescription": description}
    out = F.section(F.PROPERTIES, properties) + F.section(F.APPLICATION_PROPERTIES, app)
    out += F.section(F.AMQP_VALUE, body)
    return out


def delivery_annotations(last_sequence: int, last_offset: int, last_time_ms: int, now_ms: int) -> bytes:
    """Last-enqueued-event properties, read by the SDK when it tracks them (see `_utils.py`)."""
    return F.section(
        F.DELIVERY_ANNOTATIONS,
        {
            Symbol("last_enqueued_sequence_number"): last_sequence,
            Symbol("last_enqueued_offset"): str(last_offset),
            Symbol("last_enqueued_time_utc"): Timestamp(last_time_ms),
            Symbol("runtime_info_retrieval_time_utc"): Timestamp(now_ms),
        },
    )


__all__ = [
    "BATCH_FORMAT",
    "Described",
    "Request",
    "annotate",
    "delivered",
    "delivery_annotations",
    "message_partition_key",
    "parse_request",
    "reply",
    "sections",
    "split_batch",
]
