"""AMQP 1.0 type system: encoding and decoding of the primitive and described types.

Decoding returns plain Python values, except where the AMQP type must survive a round trip
(symbols, timestamps, described values). Encoding needs to know the exact AMQP type, so values
that Python cannot tell apart (uint vs long, symbol vs string) are wrapped in the small marker
classes below.

Messages are never decoded wholesale on the hot path: `skip` measures an encoded value without
building it, so the partition log can keep the client's bytes untouched.
"""

from __future__ import annotations

import struct
import uuid
from datetime import UTC, datetime
from typing import Any, NamedTuple


class Symbol(str):
    """An AMQP symbol (ASCII identifier), as opposed to a UTF-8 string."""

    __slots__ = ()


class Timestamp(int):
    """Milliseconds since the Unix epoch, encoded as an AMQP timestamp."""

    __slots__ = ()


class UInt(int):
    __slots__ = ()


class ULong(int):
    __slots__ = ()


class UShort(int):
    __slots__ = ()


class UByte(int):
    __slots__ = ()


class Int(int):
    __slots__ = ()


class Described(NamedTuple):
    descriptor: Any
    value: Any


class Array(NamedTuple):
    """A homogeneous AMQP array; `kind` names the element type ("symbol" is all we need)."""

    kind: str
    items: list


class Raw(bytes):
    """Already-encoded AMQP bytes, copied through verbatim."""

    __slots__ = ()


class DecodeError(ValueError):
    pass


_U8 = struct.Struct(">B")
_U16 = struct.Struct(">H")
_I16 = struct.Struct(">h")
_U32 = struct.Struct(">I")
_I32 = struct.Struct(">i")
_U64 = struct.Struct(">Q")
_I64 = struct.Struct(">q")
_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")
_I8 = struct.Struct(">b")
_SIZE_COUNT32 = struct.Struct(">II")

# --------------------------------------------------------------------------- skipping

# Width of the payload of every fixed-size constructor; variable ones are handled in `skip`.
_FIXED: dict[int, int] = {}
for _code in (0x40, 0x41, 0x42, 0x43, 0x44, 0x45):
    _FIXED[_code] = 0
for _code in (0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56):
    _FIXED[_code] = 1
for _code in (0x60, 0x61):
    _FIXED[_code] = 2
for _code in (0x70, 0x71, 0x72, 0x73, 0x74):
    _FIXED[_code] = 4
for _code in (0x80, 0x81, 0x82, 0x83, 0x84):
    _FIXED[_code] = 8
_FIXED[0x94] = 16
_FIXED[0x98] = 16


def skip(buf: bytes | memoryview, pos: int) -> int:
    """Return the position just past the encoded value starting at `pos`."""
    code = buf[pos]
    pos += 1
    if code == 0x00:
        pos = skip(buf, pos)  # descriptor
        return skip(buf, pos)
    width = _FIXED.get(code)
    if width is not None:
        return pos + width
    high = code & 0xF0
    if high in (0xA0, 0xC0, 0xE0):
        return pos + 1 + buf[pos]
    if high in (0xB0, 0xD0, 0xF0):
        return pos + 4 + _U32.unpack_from(buf, pos)[0]
    raise DecodeError(f"unknown AMQP constructor 0x{code:02x}")


# --------------------------------------------------------------------------- decoding


def decode(buf: bytes | memoryview, pos: int = 0) -> tuple[Any, int]:
    """Decode one value at `pos`; return (value, position after it)."""
    code = buf[pos]
    pos += 1
    if code == 0x00:
        descriptor, pos = decode(buf, pos)
        value, pos = decode(buf, pos)
        return Described(descriptor, value), pos
    return _decode_body(code, buf, pos)


def _decode_body(code: int, buf, pos: int) -> tuple[Any, int]:
    if code == 0x40:
        return None, pos
    if code == 0x41:
        return True, pos
    if code == 0x42:
        return False, pos
    if code in (0x43, 0x44):
        return 0, pos
    if code == 0x45:
        return [], pos
    if code == 0x56:
        return buf[pos] != 0, pos + 1
    if code in (0x50, 0x52, 0x53):
        return buf[pos], pos + 1
    if code in (0x51, 0x54, 0x55):
        return _I8.unpack_from(buf, pos)[0], pos + 1
    if code == 0x60:
        return _U16.unpack_from(buf, pos)[0], pos + 2
    if code == 0x61:
        return _I16.unpack_from(buf, pos)[0], pos + 2
    if code == 0x70:
        return _U32.unpack_from(buf, pos)[0], pos + 4
    if code == 0x71:
        return _I32.unpack_from(buf, pos)[0], pos + 4
    if code == 0x72:
        return _F32.unpack_from(buf, pos)[0], pos + 4
    if code == 0x73:
        return chr(_U32.unpack_from(buf, pos)[0]), pos + 4
    if code == 0x80:
        return _U64.unpack_from(buf, pos)[0], pos + 8
    if code == 0x81:
        return _I64.unpack_from(buf, pos)[0], pos + 8
    if code == 0x82:
        return _F64.unpack_from(buf, pos)[0], pos + 8
    if code == 0x83:
        return Timestamp(_I64.unpack_from(buf, pos)[0]), pos + 8
    if code == 0x98:
        return uuid.UUID(bytes=bytes(buf[pos : pos + 16])), pos + 16
    if code in (0x74, 0x84, 0x94):
        # Decimals are never interpreted by the hub; keep their bytes so they can be copied back.
        end = pos + _FIXED[code]
        return Raw(bytes([code]) + bytes(buf[pos:end])), end
    if code in (0xA0, 0xA1, 0xA3):
        end = pos + 1 + buf[pos]
        return _text(code, buf[pos + 1 : end]), end
    if code in (0xB0, 0xB1, 0xB3):
        end = pos + 4 + _U32.unpack_from(buf, pos)[0]
        return _text(code, buf[pos + 4 : end]), end
    if code in (0xC0, 0xC1):
        count = buf[pos + 1]
        end = pos + 1 + buf[pos]
        return _items(code == 0xC1, buf, pos + 2, count), end
    if code in (0xD0, 0xD1):
        size, count = _SIZE_COUNT32.unpack_from(buf, pos)
        return _items(code == 0xD1, buf, pos + 8, count), pos + 4 + size
    if code == 0xE0:
        return _array(buf, pos + 2, buf[pos + 1]), pos + 1 + buf[pos]
    if code == 0xF0:
        size, count = _SIZE_COUNT32.unpack_from(buf, pos)
        return _array(buf, pos + 8, count), pos + 4 + size
    raise DecodeError(f"unknown AMQP constructor 0x{code:02x}")


def _text(code: int, raw) -> Any:
    low = code & 0x0F
    if low == 0x00:
        return bytes(raw)
    if low == 0x01:
        return bytes(raw).decode("utf-8")
    return Symbol(bytes(raw).decode("ascii"))


def _items(is_map: bool, buf, pos: int, count: int):
    values = []
    for _ in range(count):
        value, pos = decode(buf, pos)
        values.append(value)
    if not is_map:
        return values
    return {values[i]: values[i + 1] for i in range(0, len(values) - 1, 2)}


def _array(buf, pos: int, count: int) -> list:
    if count == 0:
        return []
    code = buf[pos]
    pos += 1
    descriptor = None
    if code == 0x00:
        descriptor, pos = decode(buf, pos)
        code = buf[pos]
        pos += 1
    out = []
    for _ in range(count):
        value, pos = _decode_body(code, buf, pos)
        out.append(value if descriptor is None else Described(descriptor, value))
    return out


def decode_map_raw(buf: bytes | memoryview, pos: int) -> tuple[list[tuple[Any, bytes]], int]:
    """Decode a map's keys but keep each value as its encoded bytes.

    Used for message annotations: the hub adds its own entries and must copy the client's
    values back bit for bit, whatever AMQP types they use.
    """
    code = buf[pos]
    if code in (0x40,):
        return [], pos + 1
    if code == 0xC1:
        count, start, end = buf[pos + 2], pos + 3, pos + 2 + buf[pos + 1]
    elif code == 0xD1:
        size, count = _SIZE_COUNT32.unpack_from(buf, pos + 1)
        start, end = pos + 9, pos + 5 + size
    else:
        raise DecodeError(f"expected a map, got constructor 0x{code:02x}")
    entries = []
    p = start
    for _ in range(count // 2):
        key, p = decode(buf, p)
        value_end = skip(buf, p)
        entries.append((key, bytes(buf[p:value_end])))
        p = value_end
    return entries, end


# --------------------------------------------------------------------------- encoding


def encode(value: Any) -> bytes:
    """Encode one value, choosing the AMQP type from its Python type / marker class."""
    out = bytearray()
    _encode_into(out, value)
    return bytes(out)


def _encode_into(out: bytearray, value: Any) -> None:  # noqa: C901 - a flat type switch reads best
    if value is None:
        out.append(0x40)
    elif value is True:
        out.append(0x41)
    elif value is False:
        out.append(0x42)
    elif isinstance(value, Raw):
        out += value
    elif isinstance(value, Symbol):
        _variable(out, 0xA3, 0xB3, value.encode("ascii"))
    elif isinstance(value, str):
        _variable(out, 0xA1, 0xB1, value.encode("utf-8"))
    elif isinstance(value, (bytes, bytearray, memoryview)):
        _variable(out, 0xA0, 0xB0, bytes(value))
    elif isinstance(value, int):
        _encode_int(out, value)
    elif isinstance(value, float):
        out.append(0x82)
        out += _F64.pack(value)
    elif isinstance(value, uuid.UUID):
        out.append(0x98)
        out += value.bytes
    elif isinstance(value, datetime):
        out.append(0x83)
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        out += _I64.pack(int(aware.timestamp() * 1000))
    elif isinstance(value, Described):
        out.append(0x00)
        _encode_into(out, value.descriptor)
        _encode_into(out, value.value)
    elif isinstance(value, Array):
        _encode_array(out, value)
    elif isinstance(value, dict):
        body = bytearray()
        for key, item in value.items():
            _encode_into(body, key)
            _encode_into(body, item)
        _compound(out, 0xC1, 0xD1, body, 2 * len(value))
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append(0x45)
            return
        body = bytearray()
        for item in value:
            _encode_into(body, item)
        _compound(out, 0xC0, 0xD0, body, len(value))
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as AMQP")


def _encode_int(out: bytearray, value: int) -> None:
    kind = type(value)
    if kind is Timestamp:
        out.append(0x83)
        out += _I64.pack(value)
    elif kind is ULong:
        if value == 0:
            out.append(0x44)
        elif value < 256:
            out += b"\x53" + _U8.pack(value)
        else:
            out.append(0x80)
            out += _U64.pack(value)
    elif kind is UInt:
        if value == 0:
            out.append(0x43)
        elif value < 256:
            out += b"\x52" + _U8.pack(value)
        else:
            out.append(0x70)
            out += _U32.pack(value)
    elif kind is UShort:
        out.append(0x60)
        out += _U16.pack(value)
    elif kind is UByte:
        out.append(0x50)
        out.append(value)
    elif kind is Int:
        if -128 <= value <= 127:
            out += b"\x54" + _I8.pack(value)
        else:
            out.append(0x71)
            out += _I32.pack(value)
    else:
        if -128 <= value <= 127:
            out += b"\x55" + _I8.pack(value)
        else:
            out.append(0x81)
            out += _I64.pack(value)


def _variable(out: bytearray, small: int, large: int, raw: bytes) -> None:
    if len(raw) < 256:
        out.append(small)
        out.append(len(raw))
    else:
        out.append(large)
        out += _U32.pack(len(raw))
    out += raw


def _compound(out: bytearray, small: int, large: int, body: bytes | bytearray, count: int) -> None:
    if len(body) + 1 < 256 and count < 256:
        out.append(small)
        out.append(len(body) + 1)
        out.append(count)
    else:
        out.append(large)
        out += _SIZE_COUNT32.pack(len(body) + 4, count)
    out += body


def _encode_array(out: bytearray, value: Array) -> None:
    if value.kind != "symbol":
        raise TypeError(f"unsupported array element type {value.kind}")
    body = bytearray(b"\xb3")
    for item in value.items:
        raw = item.encode("ascii")
        body += _U32.pack(len(raw)) + raw
    # Always the 32-bit array form: it is valid for any size and arrays are rare here.
    out.append(0xF0)
    out += _SIZE_COUNT32.pack(len(body) + 4, len(value.items))
    out += body


def described_list(code: int, fields: list | tuple) -> bytes:
    """Encode a composite (performative, section, outcome) with a small-ulong descriptor.

    Every field is written, trailing nulls included: the Python SDK reads fields by position.
    """
    out = bytearray(b"\x00\x53")
    out.append(code)
    body = bytearray()
    for item in fields:
        _encode_into(body, item)
    _compound(out, 0xC0, 0xD0, body, len(fields))
    return bytes(out)


def error(condition: str, description: str | None = None, info: dict | None = None) -> Described:
    """An AMQP error composite; all three fields present because the SDK indexes info."""
    return Described(ULong(0x1D), [Symbol(condition), description, info])
