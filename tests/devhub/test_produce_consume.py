"""The real azure-eventhub SDK producing to and consuming from DevHub over AMQP."""

import asyncio
import datetime as dt

import pytest
from azure.eventhub import EventData
from azure.eventhub.aio import EventHubProducerClient
from azure.eventhub.amqp import AmqpAnnotatedMessage, AmqpMessageBodyType
from azure.eventhub.exceptions import ConnectError, ConnectionLostError, EventDataSendError

from devhub import DevHub, HubSpec
from devhub.frames import TRANSFER_OVERHEAD
from devhub.partition_key import partition_for_key

from .helpers import Collector, close_all, consumer, eventually, send


async def test_batch_to_partition_id_round_trips_body_properties_and_annotations(devhub):
    cs = devhub.connection_string("events")
    async with EventHubProducerClient.from_connection_string(cs) as producer:
        batch = await producer.create_batch(partition_id="2")
        for i in range(3):
            event = EventData(f"body-{i}")
            event.properties = {"kind": "test", "n": i}
            batch.add(event)
        await producer.send_batch(batch)

    info = devhub.partition_info("events", "2")
    assert info["last_enqueued_sequence_number"] == 2
    assert not info["is_empty"]
    assert devhub.partition_info("events", "0")["is_empty"]

    collector = Collector(consumer(cs), partition_id="2", starting_position="-1").start()
    try:
        events = await collector.wait_count(3)
    finally:
        await collector.close()
    assert [p for p, _ in events] == ["2", "2", "2"]
    assert collector.bodies() == ["body-0", "body-1", "body-2"]
    first = events[0][1]
    assert first.properties[b"kind"] == b"test"
    assert [e.properties[b"n"] for _, e in events] == [0, 1, 2]
    assert [e.sequence_number for _, e in events] == [0, 1, 2]
    offsets = [e.offset for _, e in events]
    assert all(isinstance(o, str) for o in offsets) and offsets[0] == "0"
    assert [int(o) for o in offsets] == sorted(int(o) for o in offsets)
    assert offsets[-1] == info["last_enqueued_offset"]
    assert abs(first.enqueued_time - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=1)
    assert first.partition_key is None


async def test_partition_keys_land_where_the_sdk_resolver_says(devhub):
    cs = devhub.connection_string("events")
    keys = [f"device-{i}" for i in range(12)]
    async with EventHubProducerClient.from_connection_string(cs) as producer:
        for key in keys[:8]:
            batch = await producer.create_batch(partition_key=key)
            batch.add(EventData(key))
            await producer.send_batch(batch)
        for key in keys[8:]:
            await producer.send_event(EventData(key), partition_key=key)
    # partition_for_key is the SDK's resolver: tests/devhub/test_partition_key.py checks it through the SDK.
    expected = {key: partition_for_key(key, ["0", "1", "2", "3"]) for key in keys}
    assert len(set(expected.values())) > 1, "test keys should spread over partitions"

    collector = Collector(consumer(cs), starting_position="-1").start()
    try:
        events = await collector.wait_count(len(keys))
    finally:
        await collector.close()
    landed = {e.body_as_str(): p for p, e in events}
    assert landed == expected
    assert {e.partition_key for _, e in events} == {k.encode() for k in keys}


async def test_events_without_partition_are_spread_round_robin(devhub):
    cs = devhub.connection_string("events")
    async with EventHubProducerClient.from_connection_string(cs) as producer:
        for i in range(8):
            await producer.send_event(EventData(f"rr-{i}"))
    counts = [devhub.partition_info("events", p)["last_enqueued_sequence_number"] + 1 for p in "0123"]
    assert counts == [2, 2, 2, 2]


async def test_hub_and_partition_properties(devhub):
    cs = devhub.connection_string("events")
    await send(cs, ["a", "b"], partition_id="1")
    async with EventHubProducerClient.from_connection_string(cs) as producer:
        hub_props = await producer.get_eventhub_properties()
        assert hub_props["eventhub_name"] == "events"
        assert hub_props["partition_ids"] == ["0", "1", "2", "3"]
        assert isinstance(hub_props["created_at"], dt.datetime)
        assert await producer.get_partition_ids() == ["0", "1", "2", "3"]
        p1 = await producer.get_partition_properties("1")
        p0 = await producer.get_partition_properties("0")
    assert p1["id"] == "1" and p1["eventhub_name"] == "events"
    assert p1["beginning_sequence_number"] == 0
    assert p1["last_enqueued_sequence_number"] == 1
    assert p1["last_enqueued_offset"] == devhub.partition_info("events", "1")["last_enqueued_offset"]
    assert p1["is_empty"] is False
    assert p0["is_empty"] is True and p0["last_enqueued_sequence_number"] == -1


async def test_every_starting_position(devhub):
    cs = devhub.connection_string("events")
    # Two sends, so the second half has a later enqueued time than the first.
    await send(cs, [f"e{i}" for i in range(5)], partition_id="0")
    await eventually(
        lambda: _now_ms() > devhub.partition_info("events", "0")["last_enqueued_time_utc"].timestamp() * 1000 + 2,
        what="the clock to move past the first send",
    )
    await send(cs, [f"e{i}" for i in range(5, 10)], partition_id="0")
    reader = Collector(consumer(cs), partition_id="0", starting_position="-1").start()
    try:
        stored = [e for _, e in await reader.wait_count(10)]
    finally:
        await reader.close()
    assert stored[5].enqueued_time > stored[4].enqueued_time
    one_ms = dt.timedelta(milliseconds=1)
    cases = {
        # name: (starting_position, inclusive, index of the first event expected)
        "earliest": ("-1", False, 0),
        "sequence": (3, False, 4),
        "sequence-inclusive": (3, True, 3),
        "offset": (stored[4].offset, False, 5),
        "offset-inclusive": (stored[4].offset, True, 4),
        "time": (stored[4].enqueued_time, False, 5),
        "time-inclusive": (stored[5].enqueued_time, True, 5),
        "time-before-all": (stored[0].enqueued_time - one_ms, False, 0),
    }
    collectors = {
        name: Collector(
            consumer(cs), partition_id="0", starting_position=position, starting_position_inclusive=inclusive
        ).start()
        for name, (position, inclusive, _) in cases.items()
    }
    try:
        await asyncio.gather(*(c.wait_count(10 - cases[name][2]) for name, c in collectors.items()))
    finally:
        await close_all(*collectors.values())
    for name, collector in collectors.items():
        first = cases[name][2]
        assert collector.bodies() == [f"e{i}" for i in range(first, 10)], name


def _now_ms() -> float:
    return dt.datetime.now(dt.UTC).timestamp() * 1000


async def test_latest_receives_only_new_events_and_tracks_last_enqueued(devhub):
    cs = devhub.connection_string("events")
    await send(cs, ["old"], partition_id="3")
    collector = Collector(
        consumer(cs), partition_id="3", starting_position="@latest", track_last_enqueued_event_properties=True
    ).start()
    try:
        # The link is attached once the hub has a reader on the partition.
        plog = devhub._owners
        await eventually(
            lambda: any(key[2] == "3" and readers for key, readers in plog.items()), what="consumer attached"
        )
        await send(cs, ["new-1", "new-2"], partition_id="3")
        await collector.wait_count(2)
        assert collector.bodies() == ["new-1", "new-2"]
        last = collector.contexts["3"].last_enqueued_event_properties
        assert last["sequence_number"] == 2
        assert last["offset"] == devhub.partition_info("events", "3")["last_enqueued_offset"]
        assert isinstance(last["enqueued_time"], dt.datetime)
        assert isinstance(last["retrieval_time"], dt.datetime)
    finally:
        await collector.close()


async def test_consumer_groups_read_independently_and_unknown_group_errors(devhub):
    cs = devhub.connection_string("events")
    await send(cs, ["x", "y"], partition_id="0")
    default = Collector(consumer(cs), partition_id="0", starting_position="-1").start()
    audit = Collector(consumer(cs, group="audit"), partition_id="0", starting_position="-1").start()
    missing = Collector(consumer(cs, group="nope"), partition_id="0", starting_position="-1").start()
    try:
        await default.wait_count(2)
        await audit.wait_count(2)
        await missing.wait(lambda c: c.errors, what="an error for the unknown consumer group")
    finally:
        await close_all(default, audit, missing)
    assert audit.bodies() == default.bodies() == ["x", "y"]
    assert missing.events == []
    assert "could not be found" in str(missing.errors[0])


async def test_oversized_event_is_refused_with_the_services_error(tmp_path):
    async with DevHub([HubSpec("events", partitions=1)], max_message_size=64 * 1024) as hub:
        cs = hub.connection_string("events")
        async with EventHubProducerClient.from_connection_string(cs, retry_total=0) as producer:
            with pytest.raises(EventDataSendError) as raised:
                await producer.send_event(EventData(b"x" * 100_000))
            assert raised.value.error == "link:message-size-exceeded"
            assert "exceeds the limit (65536 bytes)" in str(raised.value)
            # Batches are sized from the attach's max-message-size, so the SDK itself refuses to overfill.
            batch = await producer.create_batch()
            assert batch.max_size_in_bytes == 64 * 1024
            with pytest.raises(ValueError):
                batch.add(EventData(b"x" * 100_000))
            # The link stays usable after a refusal.
            await producer.send_event(EventData(b"small"))
        assert hub.partition_info("events", "0")["last_enqueued_sequence_number"] == 0


async def test_large_event_round_trips(devhub):
    cs = devhub.connection_string("events")
    # Just under the 1 MiB limit: with the hub's annotations it no longer fits one client frame,
    # so the delivery goes out as several transfers (more=true).
    body = "z" * (1024 * 1024 - 60)
    async with EventHubProducerClient.from_connection_string(cs) as producer:
        await producer.send_event(EventData(body), partition_id="1")
    stored, _ = devhub.log_of("events", "1").record(0)
    assert len(stored) + TRANSFER_OVERHEAD > 1024 * 1024, "the test must exceed the SDK's 1 MiB frame"
    collector = Collector(consumer(cs), partition_id="1", starting_position="-1").start()
    try:
        await collector.wait_count(1)
    finally:
        await collector.close()
    assert collector.bodies() == [body]


async def test_a_missing_hub_is_the_sdks_not_found_connect_error_naming_it(devhub):
    # What the service answers (a 404 on $management READ): the SDK raises ConnectError, error "not-found".
    cs = devhub.connection_string("events").replace("EntityPath=events", "EntityPath=missing")
    async with EventHubProducerClient.from_connection_string(cs, retry_total=0) as producer:
        with pytest.raises(ConnectError) as raised:
            await producer.get_eventhub_properties()
    assert raised.value.error == "not-found"
    assert "The messaging entity 'missing' could not be found" in str(raised.value)
    assert "`devhub serve --hub events --hub missing`" in str(raised.value)
    collector = Collector(consumer(cs), starting_position="-1").start()
    try:
        await collector.wait(lambda c: c.errors, what="the consumer's error")
    finally:
        await collector.close()
    error = collector.errors[0]
    assert type(error) is ConnectError and error.error == "not-found"
    assert "The messaging entity 'missing' could not be found" in str(error)


async def test_a_missing_consumer_group_is_the_sdks_not_found_connection_lost_error_naming_it():
    # As the service does: the attach is answered, then detached with amqp:not-found. The SDK retries it
    # (retry_total times) and then hands on_error a ConnectionLostError whose error is "not-found".
    async with DevHub([HubSpec("events", partitions=2)]) as hub:
        cs = hub.connection_string("events")
        collector = Collector(consumer(cs, group="replay"), partition_id="0", starting_position="-1").start()
        try:
            await collector.wait(lambda c: c.errors, what="the consumer's error")
        finally:
            await collector.close()
    error = collector.errors[0]
    assert type(error) is ConnectionLostError and error.error == "not-found"
    assert "The messaging entity 'events/consumergroups/replay' could not be found" in str(error)
    assert "--consumer-group replay" in str(error)
    assert collector.events == []


async def test_consumer_group_names_are_case_insensitive():
    async with DevHub([HubSpec("events", partitions=1, consumer_groups=("$Default", "Reports"))]) as hub:
        cs = hub.connection_string("events")
        await send(cs, ["x"])
        readers = [
            Collector(consumer(cs, group=g), starting_position="-1", partition_id="0").start()
            for g in ("$default", "$DEFAULT", "reports")
        ]
        try:
            await asyncio.gather(*(r.wait_count(1) for r in readers))
        finally:
            await close_all(*readers)
        # One group whatever the spelling: an owner level on `$Default` shuts out a lower one on `$default`.
        owner = Collector(
            consumer(cs, group="$Default"), partition_id="0", starting_position="-1", owner_level=1
        ).start()
        lower = None
        try:
            await owner.wait_count(1)
            lower = Collector(
                consumer(cs, group="$default"), partition_id="0", starting_position="-1", owner_level=0
            ).start()
            await lower.wait(lambda c: c.errors, what="the lower owner level to be refused")
        finally:
            await close_all(*(c for c in (owner, lower) if c is not None))
    assert "higher epoch of '1' already exists" in str(lower.errors[0])
    assert lower.events == []


async def test_amqp_annotated_messages_keep_every_section_the_client_sent(devhub):
    # As the service does (the SDK's live test_send_amqp_annotated_message): delivery annotations too.
    cs = devhub.connection_string("events")
    data = AmqpAnnotatedMessage(
        data_body=[b"aa", b"bb"],
        header={"priority": 7},
        delivery_annotations={"delann_key": "delann_value"},
        annotations={"ann_key": "ann_value"},
        properties={"subject": "data", "message_id": "m-1"},
        application_properties={"body_type": "data"},
        footer={"footer_key": "footer_value"},
    )
    sequence = AmqpAnnotatedMessage(
        sequence_body=[b"message", 123.456, True], application_properties={"body_type": "sequence"}
    )
    value = AmqpAnnotatedMessage(
        value_body={b"key": [-123, b"data", False]},
        delivery_annotations={"v": 1},
        application_properties={"body_type": "value"},
    )
    async with EventHubProducerClient.from_connection_string(cs) as producer:
        await producer.send_event(data, partition_id="1")
        batch = await producer.create_batch(partition_id="1")
        for message in (data, sequence, value):
            batch.add(message)
        await producer.send_batch(batch)
    plain = Collector(consumer(cs), partition_id="1", starting_position="-1").start()
    tracking = Collector(
        consumer(cs, group="audit"), partition_id="1", starting_position="-1", track_last_enqueued_event_properties=True
    ).start()
    try:
        await asyncio.gather(plain.wait_count(4), tracking.wait_count(4))
    finally:
        await close_all(plain, tracking)
    for collector in (plain, tracking):
        raws = [e.raw_amqp_message for _, e in collector.events]
        kinds = [r.application_properties[b"body_type"] for r in raws]
        assert kinds == [b"data", b"data", b"sequence", b"value"]
        for raw in raws[:2]:
            assert raw.body_type == AmqpMessageBodyType.DATA and list(raw.body) == [b"aa", b"bb"]
            assert raw.delivery_annotations[b"delann_key"] == b"delann_value"
            assert raw.annotations[b"ann_key"] == b"ann_value"
            assert b"x-opt-sequence-number" in raw.annotations
            assert raw.properties.subject == b"data" and raw.properties.message_id == b"m-1"
            assert raw.header.priority == 7
            assert raw.footer == {b"footer_key": b"footer_value"}
        assert raws[2].body_type == AmqpMessageBodyType.SEQUENCE and list(raws[2].body) == [[b"message", 123.456, True]]
        assert raws[3].body_type == AmqpMessageBodyType.VALUE and raws[3].body == {b"key": [-123, b"data", False]}
        assert raws[3].delivery_annotations[b"v"] == 1
    # Last-enqueued-event properties travel in delivery annotations too: merged with the client's, not instead.
    tracked = [e.raw_amqp_message.delivery_annotations for _, e in tracking.events]
    assert all(b"last_enqueued_sequence_number" in d for d in tracked)
    assert tracked[0][b"delann_key"] == b"delann_value" and tracked[3][b"v"] == 1
    assert tracking.contexts["1"].last_enqueued_event_properties["sequence_number"] == 3
