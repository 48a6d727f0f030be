"""Message body -> events, for both envelopes Event Grid writes to an Event Hub.

A body is a JSON array of events (Event Grid writes one-element arrays) or a single event object, in the
Event Grid schema or CloudEvents 1.0. Fields we do not know are ignored. What cannot be read as an event is
returned as a `Malformed` with a reason: the caller dead-letters it and goes on.

The checks here are the ones every event needs (an id, a source, a type). What a given type needs on top
(subject, time, data) is the catalog's business, because unknown types are ignored rather than rejected.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

EVENTGRID = "eventgrid"
CLOUDEVENTS = "cloudevents"

# Envelope attributes of each schema; everything else on a CloudEvent is an extension attribute.
_CE_CORE = frozenset(
    {"specversion", "id", "source", "subject", "type", "time", "data", "data_base64", "datacontenttype", "dataschema"}
)
_EG_CORE = frozenset({"id", "topic", "subject", "eventType", "eventTime", "data"})


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    max_body_bytes: int = 1024 * 1024
    max_depth: int = 32


# The message body the event came in, set after decoding. A JSON key of this name in the input would land
# here too; `extensions` ignores anything that is not bytes, so such input can do no more than hide them.
_BODY_FIELD = msgspec.field(default=None, name="$processor.body")


class Event(msgspec.Struct, gc=False):
    """One decoded event, schema-neutral: id, source, subject, type, time, data (+ extensions on demand).

    The decoder fills the attributes straight from either schema (the two subclasses name the wire fields)
    and skips unknown fields in C. `time` and `subject` stay as sent (None when absent). Extension attributes
    are seldom needed, so they are read again from the element's JSON only when asked for.
    """

    schema: ClassVar[str] = ""
    if TYPE_CHECKING:  # the attributes both subclasses define, for the type checker (msgspec never sees these)
        id: str
        source: str
        subject: str | None
        type: str
        time: str | None
        data: Any
        body: bytes | None

    @property
    def extensions(self) -> dict[str, Any]:
        if not isinstance(self.body, bytes):
            return {}
        doc = parse_json(self.body)
        elements = doc if isinstance(doc, list) else [doc]
        element = next((e for e in elements if isinstance(e, dict) and e.get("id") == self.id), {})
        core = _CE_CORE if self.schema == CLOUDEVENTS else _EG_CORE
        return {k: v for k, v in element.items() if k not in core}

    def __repr__(self) -> str:
        return f"Event({self.type} {self.subject} id={self.id})"


class EventGridEvent(Event, gc=False):
    id: Any = None
    source: Any = msgspec.field(default=None, name="topic")
    subject: Any = None
    type: Any = msgspec.field(default=None, name="eventType")
    time: Any = msgspec.field(default=None, name="eventTime")
    data: Any = None
    body: Any = _BODY_FIELD
    schema: ClassVar[str] = EVENTGRID


class CloudEvent(Event, gc=False):
    id: Any = None
    source: Any = None
    subject: Any = None
    type: Any = None
    time: Any = None
    data: Any = None
    specversion: Any = None
    data_base64: Any = None
    datacontenttype: Any = None
    body: Any = _BODY_FIELD
    schema: ClassVar[str] = CLOUDEVENTS


class Malformed:
    """Something that cannot be processed as an event, with the reason it will be dead-lettered under."""

    __slots__ = ("reason", "event_id")

    def __init__(self, reason: str, event_id: str | None = None):
        self.reason = reason
        self.event_id = event_id

    def __repr__(self) -> str:
        return f"Malformed({self.reason!r})"


@dataclass(slots=True)
class DecodeResult:
    events: list[Event]
    malformed: list[Malformed]


_EG_DECODER = msgspec.json.Decoder(EventGridEvent | list[EventGridEvent])
_CE_DECODER = msgspec.json.Decoder(CloudEvent | list[CloudEvent])


def decode_body(body: bytes, limits: DecodeLimits = DecodeLimits()) -> DecodeResult:
    """The events of one message body, and what in it is malformed.

    The fast path decodes well-formed bodies straight into event structs; anything unusual (a possible
    depth problem, a decode error, a missing field, a mixed array) goes the careful way, which says why.
    """
    if len(body) > limits.max_body_bytes:
        return _bad(f"body too large: {len(body)} bytes > {limits.max_body_bytes}")
    # A body cannot nest deeper than its number of opening brackets, so most never need the depth walk.
    if body.count(b"{") + body.count(b"[") > limits.max_depth:
        return _decode_careful(body, limits)
    cloud = b'"specversion"' in body
    try:
        doc = (_CE_DECODER if cloud else _EG_DECODER).decode(body)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        # msgspec checks UTF-8 inside strings lazily and raises UnicodeDecodeError there, not DecodeError.
        return _decode_careful(body, limits)
    events = doc if isinstance(doc, list) else [doc]
    if not events:
        return _bad("not an event: empty JSON array")
    for ev in events:
        if not (
            type(ev.id) is str and ev.id and type(ev.source) is str and ev.source and type(ev.type) is str and ev.type
        ) or (cloud and (ev.specversion != "1.0" or ev.data_base64 is not None)):
            return _decode_careful(body, limits)
        if type(ev.subject) is not str:
            ev.subject = None
        if type(ev.time) is not str:
            ev.time = None
        ev.body = body
    return DecodeResult(events, [])


def parse_json(text: bytes) -> Any:
    """A JSON document with the fast path's number rule: integers of any size stay exact integers.

    orjson turns integers beyond 64 bits into floats, so a body would decode differently (and a model version
    get another sequencer) depending on which path unrelated padding sent it down. Raises `BadJson`.
    """
    try:
        return _ANY_DECODER.decode(text)
    except UnicodeDecodeError as exc:
        raise BadJson(_utf8_reason(text) or f"not UTF-8: {exc.reason}") from None
    except RecursionError:
        raise BadJson("too deep: nesting exceeds the parser's limit") from None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise BadJson(_utf8_reason(text) or f"not JSON: {exc}") from None


class BadJson(ValueError):
    """Text that is not a JSON document; the message is the dead-letter reason."""


_ANY_DECODER = msgspec.json.Decoder()


def _decode_careful(body: bytes, limits: DecodeLimits) -> DecodeResult:
    try:
        doc = parse_json(body)
    except BadJson as exc:
        return _bad(str(exc))
    if _depth(doc, limits.max_depth) > limits.max_depth:
        return _bad(f"too deep: nesting exceeds {limits.max_depth} levels")

    items: list[Any]
    if isinstance(doc, dict):
        items = [doc]
    elif isinstance(doc, list):
        if not doc:
            return _bad("not an event: empty JSON array")
        items = doc
    else:
        return _bad(f"not an event: top-level JSON {type(doc).__name__}")

    events: list[Event] = []
    malformed: list[Malformed] = []
    many = len(items) > 1
    for index, item in enumerate(items):
        decoded = _decode_event(item, limits)
        if isinstance(decoded, Malformed):
            if many:
                decoded.reason = f"element {index}: {decoded.reason}"
            malformed.append(decoded)
        else:
            decoded.body = body
            events.append(decoded)
    return DecodeResult(events, malformed)


def _bad(reason: str) -> DecodeResult:
    return DecodeResult([], [Malformed(reason)])


def _utf8_reason(text: bytes) -> str | None:
    try:
        text.decode("utf-8")
    except UnicodeDecodeError as uerr:
        return f"not UTF-8: {uerr.reason} at byte {uerr.start}"
    return None


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of a parsed document, giving up as soon as it passes `limit`."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, level = stack.pop()
        if level > deepest:
            deepest = level
            if deepest > limit:
                return deepest
        if isinstance(node, dict):
            stack.extend((child, level + 1) for child in node.values() if isinstance(child, (dict, list)))
        elif isinstance(node, list):
            stack.extend((child, level + 1) for child in node if isinstance(child, (dict, list)))
    return deepest


def _decode_event(item: Any, limits: DecodeLimits) -> Event | Malformed:
    if not isinstance(item, dict):
        return Malformed(f"not an event: JSON {type(item).__name__} where an object was expected")
    if "specversion" in item:
        return _cloudevent(item, limits)
    if "eventType" in item:
        return _eventgrid(item)
    return Malformed("not an event: neither an Event Grid (eventType) nor a CloudEvents (specversion) envelope")


# Where each schema keeps the source, the type and the time.
_NAMES = {EVENTGRID: ("topic", "eventType", "eventTime"), CLOUDEVENTS: ("source", "type", "time")}


def _eventgrid(item: dict[str, Any]) -> Event | Malformed:
    event_id = item.get("id")
    problem = _check_common(event_id, item.get("topic"), "topic", item.get("eventType"), "eventType")
    if problem:
        return Malformed(problem, event_id if isinstance(event_id, str) else None)
    return _event(EventGridEvent, item, item.get("data"))


def _cloudevent(item: dict[str, Any], limits: DecodeLimits) -> Event | Malformed:
    event_id = item.get("id")
    good_id = event_id if isinstance(event_id, str) else None
    if item.get("specversion") != "1.0":
        return Malformed(f"unsupported CloudEvents specversion {item.get('specversion')!r}", good_id)
    problem = _check_common(event_id, item.get("source"), "source", item.get("type"), "type")
    if problem:
        return Malformed(problem, good_id)
    data = item.get("data")
    if data is None and "data_base64" in item:
        data = _base64_data(item, limits)
        if isinstance(data, Malformed):
            data.event_id = good_id
            return data
    return _event(CloudEvent, item, data, specversion="1.0")


def _event(cls: type[Event], item: dict[str, Any], data: Any, **extra: Any) -> Event:
    source_key, type_key, time_key = _NAMES[cls.schema]
    subject, time = item.get("subject"), item.get(time_key)
    return cls(
        id=item["id"],
        source=item[source_key],
        subject=subject if isinstance(subject, str) else None,
        type=item[type_key],
        time=time if isinstance(time, str) else None,
        data=data,
        **extra,
    )


def _check_common(event_id: Any, source: Any, source_name: str, etype: Any, type_name: str) -> str | None:
    if not isinstance(event_id, str) or not event_id:
        return "event has no id"
    if not isinstance(source, str) or not source:
        return f"event has no {source_name}"
    if not isinstance(etype, str) or not etype:
        return f"event has no {type_name}"
    return None


def _base64_data(item: dict[str, Any], limits: DecodeLimits) -> Any:
    # Binary data is only meaningful to us when it is JSON (Event Grid never sends anything else here).
    try:
        raw = base64.b64decode(item["data_base64"], validate=True)
    except (binascii.Error, TypeError, ValueError):
        return Malformed("data_base64 is not valid base64")
    content_type = str(item.get("datacontenttype") or "application/json")
    if "json" not in content_type:
        return Malformed(f"data_base64 with non-JSON datacontenttype {content_type!r}")
    try:
        data = parse_json(raw)
    except BadJson as exc:
        return Malformed(f"data_base64: {exc}")
    # The body's depth check could not see inside the base64 text.
    if _depth(data, limits.max_depth) > limits.max_depth:
        return Malformed(f"too deep: data_base64 nesting exceeds {limits.max_depth} levels")
    return data
