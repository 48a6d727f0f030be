"""AMQP frames: the 8-byte frame header, performative codes and the frames the hub sends.

Performatives are built as full lists (trailing nulls included) with small-ulong descriptors,
because the Python SDK reads their fields by index. The transfer frame used for every delivered
event is packed with one struct call from a constant template: it is the hot path.
"""

from __future__ import annotations

import struct
from typing import Any

from .codec import Array, Described, Symbol, UByte, UInt, ULong, UShort, decode, described_list, encode

AMQP_HEADER = b"AMQP\x00\x01\x00\x00"
SASL_HEADER = b"AMQP\x03\x01\x00\x00"

FRAME_AMQP = 0x00
FRAME_SASL = 0x01

OPEN, BEGIN, ATTACH, FLOW, TRANSFER, DISPOSITION, DETACH, END, CLOSE = range(0x10, 0x19)
SASL_MECHANISMS, SASL_INIT, SASL_CHALLENGE, SASL_RESPONSE, SASL_OUTCOME = range(0x40, 0x45)

# Message sections
HEADER, DELIVERY_ANNOTATIONS, MESSAGE_ANNOTATIONS, PROPERTIES = 0x70, 0x71, 0x72, 0x73
APPLICATION_PROPERTIES, DATA, AMQP_SEQUENCE, AMQP_VALUE, FOOTER = 0x74, 0x75, 0x76, 0x77, 0x78

# Delivery states / terminus
RECEIVED, ACCEPTED, REJECTED, RELEASED, MODIFIED = 0x23, 0x24, 0x25, 0x26, 0x27
SOURCE, TARGET = 0x28, 0x29

ROLE_SENDER = False
ROLE_RECEIVER = True

_FRAME_HEADER = struct.Struct(">IBBH")
EMPTY_FRAME = _FRAME_HEADER.pack(8, 2, FRAME_AMQP, 0)


def frame(channel: int, body: bytes, frame_type: int = FRAME_AMQP) -> bytes:
    return _FRAME_HEADER.pack(8 + len(body), 2, frame_type, channel) + body


def parse_frame_header(buf, pos: int) -> tuple[int, int, int, int]:
    """(size, doff, type, channel) of the frame starting at `pos`."""
    return _FRAME_HEADER.unpack_from(buf, pos)


def decode_performative(body: memoryview) -> tuple[int, list, memoryview]:
    """Decode a frame body into (performative code, fields, trailing payload)."""
    value, end = decode(body, 0)
    if not isinstance(value, Described):
        raise ValueError("frame body is not a described performative")
    fields = value.value if isinstance(value.value, list) else []
    return int(value.descriptor), fields, body[end:]


def field(fields: list, index: int, default: Any = None) -> Any:
    """Fields beyond what the peer sent read as null (the spec allows trailing nulls to be omitted)."""
    if index < len(fields) and fields[index] is not None:
        return fields[index]
    return default


# --------------------------------------------------------------------------- SASL


def sasl_mechanisms() -> bytes:
    return frame(0, described_list(SASL_MECHANISMS, [Array("symbol", ["ANONYMOUS"])]), FRAME_SASL)


def sasl_outcome(code: int = 0) -> bytes:
    return frame(0, described_list(SASL_OUTCOME, [UByte(code), None]), FRAME_SASL)


# --------------------------------------------------------------------------- connection / session


def open_frame(container_id: str, max_frame_size: int, channel_max: int) -> bytes:
    # No idle-timeout: the SDK only heart-beats while receiving, so idle producers would be cut.
    fields = [container_id, None, UInt(max_frame_size), UShort(channel_max), None, None, None, None, None, None]
    return frame(0, described_list(OPEN, fields))


def close_frame(err: Described | None = None) -> bytes:
    return frame(0, described_list(CLOSE, [err]))


def begin_frame(
    channel: int,
    remote_channel: int,
    next_outgoing_id: int,
    incoming_window: int,
    outgoing_window: int,
    handle_max: int,
) -> bytes:
    fields = [
        UShort(remote_channel),
        UInt(next_outgoing_id),
        UInt(incoming_window),
        UInt(outgoing_window),
        UInt(handle_max),
        None,
        None,
        None,
    ]
    return frame(channel, described_list(BEGIN, fields))


def end_frame(channel: int, err: Described | None = None) -> bytes:
    return frame(channel, described_list(END, [err]))


# --------------------------------------------------------------------------- links


def source(address: str | None, filters: dict | None = None) -> Described:
    return Described(ULong(SOURCE), [address, None, None, None, None, None, None, filters, None, None, None])


def target(address: str | None) -> Described:
    return Described(ULong(TARGET), [address, None, None, None, None, None, None])


def attach_frame(
    channel: int,
    name: str,
    handle: int,
    role: bool,
    src: Described | None,
    tgt: Described | None,
    *,
    snd_settle_mode: int | None = None,
    initial_delivery_count: int | None = None,
    max_message_size: int | None = None,
    offered_capabilities: list[str] | None = None,
    properties: dict | None = None,
) -> bytes:
    fields = [
        name,
        UInt(handle),
        role,
        None if snd_settle_mode is None else UByte(snd_settle_mode),
        UByte(0),
        src,
        tgt,
        None,
        False,
        None if initial_delivery_count is None else UInt(initial_delivery_count),
        None if max_message_size is None else ULong(max_message_size),
        Array("symbol", offered_capabilities) if offered_capabilities else None,
        None,
        properties,
    ]
    return frame(channel, described_list(ATTACH, fields))


def detach_frame(channel: int, handle: int, closed: bool, err: Described | None = None) -> bytes:
    return frame(channel, described_list(DETACH, [UInt(handle), closed, err]))


def flow_frame(
    channel: int,
    next_incoming_id: int,
    incoming_window: int,
    next_outgoing_id: int,
    outgoing_window: int,
    handle: int | None = None,
    delivery_count: int | None = None,
    link_credit: int | None = None,
    available: int | None = None,
    drain: bool = False,
    echo: bool = False,
) -> bytes:
    fields = [
        UInt(next_incoming_id),
        UInt(incoming_window),
        UInt(next_outgoing_id),
        UInt(outgoing_window),
        None if handle is None else UInt(handle),
        None if delivery_count is None else UInt(delivery_count),
        None if link_credit is None else UInt(link_credit),
        None if available is None else UInt(available),
        drain,
        echo,
        None,
    ]
    return frame(channel, described_list(FLOW, fields))


def disposition_frame(channel: int, first: int, last: int, state: Described) -> bytes:
    # role=receiver: the hub settles what the client's sender link delivered.
    fields = [ROLE_RECEIVER, UInt(first), UInt(last), True, state, False]
    return frame(channel, described_list(DISPOSITION, fields))


ACCEPTED_STATE = Described(ULong(ACCEPTED), [])


def rejected_state(err: Described) -> Described:
    return Described(ULong(REJECTED), [err])


# --------------------------------------------------------------------------- transfers (hot path)

# Performative of a pre-settled, single-frame transfer: handle, delivery-id and delivery-tag are
# fixed-width so the whole frame head is one struct.pack; the tail fields never change.
_TRANSFER_HEAD = struct.Struct(">IBBH7sI1sI2sI8s")
_T_PREFIX = b"\x00\x53\x14\xc0\x19\x0b\x70"  # descriptor, list8 (size 25, 11 fields), uint constructor
_T_DID = b"\x70"
_T_TAG = b"\xa0\x04"
_T_SUFFIX = b"\x43\x41\x42\x40\x40\x42\x42\x42"  # format 0, settled, not more, nulls, no resume/abort/batch
TRANSFER_OVERHEAD = _TRANSFER_HEAD.size
_pack_head = _TRANSFER_HEAD.pack


def settled_transfer(channel: int, handle: int, delivery_id: int, payload: bytes) -> bytes:
    return (
        _pack_head(
            TRANSFER_OVERHEAD + len(payload),
            2,
            0,
            channel,
            _T_PREFIX,
            handle,
            _T_DID,
            delivery_id,
            _T_TAG,
            delivery_id & 0xFFFFFFFF,
            _T_SUFFIX,
        )
        + payload
    )


def transfer_head(channel: int, handle: int, delivery_id: int, payload_len: int) -> bytes:
    """Frame head only; the caller writes head and payload back to back without concatenating."""
    return _pack_head(
        TRANSFER_OVERHEAD + payload_len,
        2,
        0,
        channel,
        _T_PREFIX,
        handle,
        _T_DID,
        delivery_id,
        _T_TAG,
        delivery_id & 0xFFFFFFFF,
        _T_SUFFIX,
    )


def split_transfer(channel: int, handle: int, delivery_id: int, payload: bytes, max_frame_size: int) -> list[bytes]:
    """A delivery too large for one frame, cut into continuation transfers (more=true)."""
    tag = struct.pack(">I", delivery_id & 0xFFFFFFFF)
    frames = []
    pos = 0
    while True:
        probe = described_list(
            TRANSFER, [UInt(handle), UInt(delivery_id), tag, UInt(0), True, True, None, None, False, False, False]
        )
        room = max_frame_size - 8 - len(probe)
        chunk = payload[pos : pos + room]
        pos += len(chunk)
        more = pos < len(payload)
        perf = described_list(
            TRANSFER, [UInt(handle), UInt(delivery_id), tag, UInt(0), True, more, None, None, False, False, False]
        )
        frames.append(frame(channel, perf + chunk))
        if not more:
            return frames


def section(code: int, value: Any) -> bytes:
    return b"\x00\x53" + bytes([code]) + encode(value)


__all__ = [name for name in globals() if not name.startswith("_")] + ["Symbol"]
