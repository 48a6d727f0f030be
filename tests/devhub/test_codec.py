"""AMQP codec and message annotation properties, checked against the SDK's own decoder."""

import uuid

from azure.eventhub._pyamqp._decode import decode_payload
from hypothesis import given, settings
from hypothesis import strategies as st

from devhub import codec, frames, message
from devhub.codec import Symbol, Timestamp

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=300),
    st.binary(max_size=300),
    st.uuids(),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz-:", max_size=40).map(Symbol),
    st.integers(0, 2**62).map(Timestamp),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=8),
        st.dictionaries(st.text(max_size=20), children, max_size=8),
    ),
    max_leaves=40,
)


@settings(max_examples=150, deadline=None)
@given(values)
def test_encode_decode_round_trip(value):
    encoded = codec.encode(value)
    decoded, end = codec.decode(encoded)
    assert end == len(encoded)
    assert codec.skip(encoded, 0) == len(encoded)
    assert decoded == (list(value) if isinstance(value, tuple) else value)
    assert type(decoded) is type(value) or isinstance(value, (list, dict))


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(st.text(max_size=20), scalars, max_size=10),
    st.binary(max_size=2000),
    st.integers(0, 2**40),
    st.integers(0, 2**40),
    st.one_of(st.none(), st.text(min_size=1, max_size=30)),
)
def test_annotated_messages_decode_in_the_sdk(app_props, body, seq, offset, key):
    raw = (
        frames.section(frames.HEADER, [True, None, None, None, None])
        + frames.section(frames.MESSAGE_ANNOTATIONS, {Symbol("user-note"): "kept"})
        + frames.section(frames.APPLICATION_PROPERTIES, app_props)
        + frames.section(frames.DATA, body)
    )
    stored, split = message.annotate(raw, seq, offset, 1_700_000_000_000, key)
    extra = message.delivery_annotations(seq, offset, 1_700_000_000_000, 1_700_000_000_001)
    sdk = decode_payload(memoryview(message.delivered(stored, split, extra)))
    annotations = sdk.message_annotations
    assert annotations[b"x-opt-sequence-number"] == seq
    assert annotations[b"x-opt-offset"] == str(offset).encode()
    assert annotations[b"x-opt-enqueued-time"] == 1_700_000_000_000
    assert annotations[b"user-note"] == b"kept"
    assert annotations.get(b"x-opt-partition-key") == (key.encode() if key else None)
    assert sdk.delivery_annotations[b"last_enqueued_sequence_number"] == seq
    assert sdk.data == [body]
    assert sdk.header[0] is True
    assert len(sdk.application_properties or {}) == len(app_props)


def test_a_clients_delivery_annotations_are_kept_and_merged_with_the_hubs():
    # Under the symbolic descriptor, as another client might send them; the hub's key wins a clash.
    own = (
        b"\x00"
        + codec.encode(Symbol("amqp:delivery-annotations:map"))
        + codec.encode({Symbol("delann_key"): "delann_value", Symbol("last_enqueued_sequence_number"): "client's"})
    )
    raw = (
        frames.section(frames.HEADER, [True, None, None, None, None])
        + own
        + frames.section(frames.DATA, b"body")
        + frames.section(frames.FOOTER, {Symbol("f"): 1})
    )
    stored, split = message.annotate(raw, 5, 100, 1_700_000_000_000, None)
    plain = decode_payload(memoryview(stored))
    assert plain.delivery_annotations == {b"delann_key": b"delann_value", b"last_enqueued_sequence_number": b"client's"}
    assert plain.data == [b"body"] and plain.footer == {b"f": 1}
    extra = message.delivery_annotations(7, 300, 1_700_000_000_000, 1_700_000_000_001)
    tracked = decode_payload(memoryview(message.delivered(stored, split, extra)))
    assert tracked.delivery_annotations[b"delann_key"] == b"delann_value"
    assert tracked.delivery_annotations[b"last_enqueued_sequence_number"] == 7
    assert tracked.delivery_annotations[b"last_enqueued_offset"] == b"300"
    assert tracked.message_annotations[b"x-opt-sequence-number"] == 5
    assert tracked.header[0] is True and tracked.data == [b"body"] and tracked.footer == {b"f": 1}


def test_split_transfer_reassembles():
    payload = bytes(range(256)) * 50
    parts = frames.split_transfer(3, 7, 42, payload, 1000)
    assert len(parts) > 10 and all(len(p) <= 1000 for p in parts)
    joined = b""
    for i, part in enumerate(parts):
        code, fields, rest = frames.decode_performative(memoryview(part)[8:])
        assert code == frames.TRANSFER and fields[0] == 7 and fields[1] == 42
        assert fields[5] is (i < len(parts) - 1)
        joined += bytes(rest)
    assert joined == payload


def test_settled_transfer_template_matches_the_generic_encoder():
    body = b"\x00\x53\x77\xa1\x02hi"
    fast = frames.settled_transfer(5, 9, 300, body)
    code, fields, rest = frames.decode_performative(memoryview(fast)[8:])
    assert code == frames.TRANSFER
    assert fields == [9, 300, (300).to_bytes(4, "big"), 0, True, False, None, None, False, False, False]
    assert bytes(rest) == body
    assert int.from_bytes(fast[:4], "big") == len(fast)


def test_uuid_message_ids_echo_as_correlation_ids():
    mid = uuid.uuid4()
    request = (
        frames.section(
            frames.PROPERTIES, [mid, None, None, None, "reply", None, None, None, None, None, None, None, None]
        )
        + frames.section(frames.APPLICATION_PROPERTIES, {"operation": "put-token"})
        + frames.section(frames.AMQP_VALUE, "token")
    )
    parsed = message.parse_request(request)
    assert parsed.message_id == mid and parsed.reply_to == "reply"
    sdk = decode_payload(memoryview(message.reply(parsed.message_id, 202, "Accepted")))
    assert sdk.properties.correlation_id == mid
    assert sdk.application_properties[b"status-code"] == 202
