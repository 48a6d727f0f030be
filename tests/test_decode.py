"""Decoding of both envelopes, single objects and arrays, unknown fields, and what is not an event."""

import base64

import orjson
import pytest

from processor.events.envelope import CLOUDEVENTS, EVENTGRID, DecodeLimits, decode_body
from tests.builders import ML, WS, body, ce, eg


def test_event_grid_schema_in_a_one_element_array():
    result = decode_body(body(eg(f"{ML}.RunCompleted", "experiments/e/runs/r", {"runId": "r"}, id="a1")))
    [ev] = result.events
    assert (ev.id, ev.source, ev.subject, ev.type, ev.schema) == (
        "a1",
        WS,
        "experiments/e/runs/r",
        f"{ML}.RunCompleted",
        EVENTGRID,
    )
    assert ev.time == "2026-01-01T00:00:00.0000000Z"
    assert ev.data == {"runId": "r"}
    assert ev.extensions == {"dataVersion": "1", "metadataVersion": "1"}
    assert result.malformed == []


def test_cloudevents_schema_as_a_single_object_keeps_extension_attributes():
    result = decode_body(
        body(
            ce(
                f"{ML}.RunCompleted",
                "experiments/e/runs/r",
                {"runId": "r"},
                id="c1",
                traceparent="00-abc",
                partitionkey="k",
            ),
            array=False,
        )
    )
    [ev] = result.events
    assert (ev.id, ev.source, ev.type, ev.schema) == ("c1", WS, f"{ML}.RunCompleted", CLOUDEVENTS)
    assert ev.extensions == {"traceparent": "00-abc", "partitionkey": "k"}


def test_cloudevents_data_base64_holding_json():
    event = ce(f"{ML}.RunCompleted", "s", None)
    event["data_base64"] = base64.b64encode(b'{"runId": "r"}').decode()
    [ev] = decode_body(body(event)).events
    assert ev.data == {"runId": "r"}


def test_arrays_of_several_events_and_a_bad_element_among_them():
    result = decode_body(orjson.dumps([eg("T", "s", {}, id="1"), 42, ce("T", "s", {}, id="2")]))
    assert [e.id for e in result.events] == ["1", "2"]
    [bad] = result.malformed
    assert bad.reason.startswith("element 1: not an event")


def test_unknown_fields_anywhere_are_ignored():
    event = eg(f"{ML}.RunCompleted", "s", {"runId": "r", "newField": {"deep": [1, 2]}}, futureEnvelopeField=True)
    [ev] = decode_body(body(event)).events
    assert ev.data["newField"] == {"deep": [1, 2]}


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"\xff\xfe{}", "not UTF-8"),
        (b"not json at all", "not JSON"),
        (b'[{"id": "1", "topic": ', "not JSON"),
        (b"[]", "empty JSON array"),
        (b'"a string"', "top-level JSON str"),
        (b"12", "top-level JSON int"),
        (b"null", "top-level JSON NoneType"),
        (b'{"hello": "world"}', "neither an Event Grid"),
        (b'[{"eventType": "T", "topic": "t"}]', "no id"),
        (b'[{"eventType": "T", "id": "1"}]', "no topic"),
        (b'[{"eventType": "", "id": "1", "topic": "t"}]', "no eventType"),
        (b'{"specversion": "0.3", "id": "1", "source": "s", "type": "T"}', "specversion"),
        (b'{"specversion": "1.0", "id": "1", "type": "T"}', "no source"),
        (b'{"specversion": "1.0", "id": "1", "source": "s", "type": "T", "data_base64": "!!"}', "not valid base64"),
        (b"[" * 40 + b"]" * 40, "too deep"),
        (b"[" * 3000 + b"]" * 3000, "too deep"),
    ],
)
def test_what_is_not_an_event_is_malformed_with_a_reason(raw, reason):
    result = decode_body(raw)
    assert result.events == []
    [bad] = result.malformed
    assert reason in bad.reason


def test_body_over_the_size_limit_is_malformed_before_parsing():
    result = decode_body(b"[" + b" " * 100 + b"]", DecodeLimits(max_body_bytes=50))
    assert "too large" in result.malformed[0].reason


def test_depth_limit_counts_levels_not_brackets():
    wide = orjson.dumps([{"a": [1]} for _ in range(100)])  # many brackets, depth 3
    assert all("too deep" not in m.reason for m in decode_body(wide, DecodeLimits(max_depth=3)).malformed)
    deep = orjson.dumps([{"a": [{"b": [1]}]}])  # depth 5
    assert "too deep" in decode_body(deep, DecodeLimits(max_depth=4)).malformed[0].reason
