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
from typing import Any

import orjson

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


class Event:
    """One decoded event, schema-neutral. `time` and `subject` stay as sent (None when absent)."""

    __slots__ = ("id", "source", "subject", "type", "time", "data", "extensions", "schema")

    def __init__(self, id, source, subject, type, time, data, extensions, schema):  # noqa: A002
        self.id: str = id
        self.source: str = source
        self.subject: str | None = subject
        self.type: str = type
        self.time: str | None = time
        self.data: Any = data
        self.extensions: dict[str, Any] = extensions
        self.schema: str = schema

    def __repr__(self) -> str:
        return f"Event({self.type} {self.subject} id={self.id})"


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


def decode_body(body: bytes, limits: DecodeLimits = DecodeLimits()) -> DecodeResult:
    if len(body) > limits.max_body_bytes:
        return _bad(f"body too large: {len(body)} bytes > {limits.max_body_bytes}")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return _bad(_json_reason(body, exc))
    # Cheap bound first: a body cannot nest deeper than its number of opening brackets.
    if body.count(b"{") + body.count(b"[") > limits.max_depth and _depth(doc, limits.max_depth) > limits.max_depth:
        return _bad(f"too deep: nesting exceeds {limits.max_depth} levels")

    if isinstance(doc, dict):
        items = (doc,)
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
        decoded = _decode_event(item)
        if isinstance(decoded, Malformed):
            if many:
                decoded.reason = f"element {index}: {decoded.reason}"
            malformed.append(decoded)
        else:
            events.append(decoded)
    return DecodeResult(events, malformed)


def _bad(reason: str) -> DecodeResult:
    return DecodeResult([], [Malformed(reason)])


def _json_reason(body: bytes, exc: orjson.JSONDecodeError) -> str:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as uerr:
        return f"not UTF-8: {uerr.reason} at byte {uerr.start}"
    text = str(exc)
    if "depth limit" in text:
        return f"too deep: {text}"
    return f"not JSON: {text}"


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


def _decode_event(item: Any) -> Event | Malformed:
    if not isinstance(item, dict):
        return Malformed(f"not an event: JSON {type(item).__name__} where an object was expected")
    if "specversion" in item:
        return _cloudevent(item)
    if "eventType" in item:
        return _eventgrid(item)
    return Malformed("not an event: neither an Event Grid (eventType) nor a CloudEvents (specversion) envelope")


def _eventgrid(item: dict) -> Event | Malformed:
    event_id = item.get("id")
    problem = _check_common(event_id, item.get("topic"), "topic", item.get("eventType"), "eventType")
    if problem:
        return Malformed(problem, event_id if isinstance(event_id, str) else None)
    subject, time = item.get("subject"), item.get("eventTime")
    extensions = {k: v for k, v in item.items() if k not in _EG_CORE}
    return Event(
        event_id,
        item["topic"],
        subject if isinstance(subject, str) else None,
        item["eventType"],
        time if isinstance(time, str) else None,
        item.get("data"),
        extensions,
        EVENTGRID,
    )


def _cloudevent(item: dict) -> Event | Malformed:
    event_id = item.get("id")
    good_id = event_id if isinstance(event_id, str) else None
    if item.get("specversion") != "1.0":
        return Malformed(f"unsupported CloudEvents specversion {item.get('specversion')!r}", good_id)
    problem = _check_common(event_id, item.get("source"), "source", item.get("type"), "type")
    if problem:
        return Malformed(problem, good_id)
    data = item.get("data")
    if data is None and "data_base64" in item:
        data = _base64_data(item)
        if isinstance(data, Malformed):
            data.event_id = good_id
            return data
    subject, time = item.get("subject"), item.get("time")
    extensions = {k: v for k, v in item.items() if k not in _CE_CORE}
    return Event(
        event_id,
        item["source"],
        subject if isinstance(subject, str) else None,
        item["type"],
        time if isinstance(time, str) else None,
        data,
        extensions,
        CLOUDEVENTS,
    )


def _check_common(event_id: Any, source: Any, source_name: str, etype: Any, type_name: str) -> str | None:
    if not isinstance(event_id, str) or not event_id:
        return "event has no id"
    if not isinstance(source, str) or not source:
        return f"event has no {source_name}"
    if not isinstance(etype, str) or not etype:
        return f"event has no {type_name}"
    return None


def _base64_data(item: dict) -> Any:
    # Binary data is only meaningful to us when it is JSON (Event Grid never sends anything else here).
    try:
        raw = base64.b64decode(item["data_base64"], validate=True)
    except (binascii.Error, TypeError, ValueError):
        return Malformed("data_base64 is not valid base64")
    content_type = str(item.get("datacontenttype") or "application/json")
    if "json" not in content_type:
        return Malformed(f"data_base64 with non-JSON datacontenttype {content_type!r}")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Malformed(f"data_base64 is not JSON: {exc}")
