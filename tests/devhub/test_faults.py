"""Owner level (epoch) arbitration and injected faults, as the SDK experiences them."""

import asyncio

from azure.eventhub import EventData
from azure.eventhub.aio import EventHubProducerClient
from azure.eventhub.exceptions import ConnectionLostError, EventHubError

from .helpers import Collector, close_all, consumer, eventually, send


def readers(hub, partition, group="$default"):
    return hub._owners.get(("events", group, partition), set())


async def test_higher_owner_level_takes_over_and_lower_is_refused(devhub):
    cs = devhub.connection_string("events")
    await send(cs, ["before"], partition_id="0")
    first = Collector(consumer(cs), partition_id="0", starting_position="-1", owner_level=1).start()
    second = third = None
    try:
        await first.wait_count(1)
        second = Collector(consumer(cs), partition_id="0", starting_position="-1", owner_level=2).start()
        await second.wait_count(1)
        await first.wait(lambda c: c.errors, what="the displaced consumer's error")
        assert isinstance(first.errors[0], ConnectionLostError)
        assert "link:stolen" in str(first.errors[0]) or first.errors[0].error == "link:stolen"
        assert "higher epoch of '2'" in str(first.errors[0])

        third = Collector(consumer(cs), partition_id="0", starting_position="-1", owner_level=1).start()
        await third.wait(lambda c: c.errors, what="the lower owner level to be refused")
        assert "higher epoch of '2' already exists" in str(third.errors[0])
        assert third.events == []

        # The owner keeps receiving.
        await send(cs, ["after"], partition_id="0")
        await second.wait_count(2)
        assert second.bodies() == ["before", "after"]
        assert [r.epoch for r in readers(devhub, "0")] == [2]
    finally:
        await close_all(*(c for c in (first, second, third) if c is not None))


async def test_equal_owner_level_takes_over(devhub):
    # With a checkpoint store the processor always uses owner level 0, so equal must win.
    cs = devhub.connection_string("events")
    await send(cs, ["x"], partition_id="1")
    first = Collector(consumer(cs), partition_id="1", starting_position="-1", owner_level=0).start()
    second = None
    try:
        await first.wait_count(1)
        second = Collector(consumer(cs), partition_id="1", starting_position="-1", owner_level=0).start()
        await second.wait_count(1)
        await first.wait(lambda c: c.errors, what="the displaced consumer's error")
        assert "link:stolen" in repr(first.errors[0]) or "epoch" in str(first.errors[0])
    finally:
        await close_all(*(c for c in (first, second) if c is not None))


async def test_producer_retries_through_server_busy(devhub):
    cs = devhub.connection_string("events")
    async with EventHubProducerClient.from_connection_string(cs, retry_backoff_factor=0.05) as producer:
        await producer.send_event(EventData("one"), partition_id="2")
        assert devhub.faults.detach_links(error="com.microsoft:server-busy", hub="events") >= 1
        await producer.send_event(EventData("two"), partition_id="2")
    assert devhub.partition_info("events", "2")["last_enqueued_sequence_number"] == 1


async def test_consumer_recovers_after_server_busy_detach(devhub):
    cs = devhub.connection_string("events")
    collector = Collector(consumer(cs), partition_id="3", starting_position="-1").start()
    try:
        await send(cs, ["a"], partition_id="3")
        await collector.wait_count(1)
        assert devhub.faults.detach_links(error="com.microsoft:server-busy", hub="events", partition="3") == 1
        await send(cs, ["b"], partition_id="3")
        await collector.wait_count(2, timeout=30)
        assert collector.bodies() == ["a", "b"]
    finally:
        await collector.close()


async def test_consumer_recovers_after_dropped_connections(devhub):
    cs = devhub.connection_string("events")
    collector = Collector(consumer(cs), partition_id="0", starting_position="-1").start()
    try:
        await send(cs, ["a", "b"], partition_id="0")
        await collector.wait_count(2)
        assert devhub.faults.drop_connections() >= 1
        await send(cs, ["c"], partition_id="0")
        await collector.wait(lambda c: "c" in c.bodies(), timeout=30, what="the event sent after the drop")
        # The processor resumes after the last event it saw: nothing is lost or repeated.
        assert collector.bodies() == ["a", "b", "c"]
    finally:
        await collector.close()


async def test_paused_partition_delivers_nothing_until_resumed(devhub):
    cs = devhub.connection_string("events")
    collector = Collector(consumer(cs), starting_position="-1").start()
    try:
        await eventually(lambda: all(readers(devhub, p) for p in "01"), what="readers on partitions 0 and 1")
        devhub.faults.pause_partition("events", "1")
        await send(cs, ["held"], partition_id="1")
        await send(cs, ["free"], partition_id="0")
        # Partition 0 flows while 1 is paused; both links are served by the same client.
        await collector.wait(lambda c: "free" in c.bodies(), what="the unpaused partition's event")
        await send(cs, ["free-2"], partition_id="0")
        await collector.wait(lambda c: "free-2" in c.bodies(), what="a second event on the unpaused partition")
        assert collector.bodies("1") == []
        devhub.faults.resume_partition("events", "1")
        await collector.wait(lambda c: c.bodies("1") == ["held"], what="the paused partition's event after resume")
    finally:
        await collector.close()


async def test_slow_partition_still_delivers_everything(devhub):
    cs = devhub.connection_string("events")
    devhub.faults.slow_partition("events", "2", delay_seconds=0.2)
    collector = Collector(consumer(cs), partition_id="2", starting_position="-1", prefetch=2).start()
    try:
        await send(cs, [f"s{i}" for i in range(6)], partition_id="2")
        await collector.wait_count(6)
        assert collector.bodies() == [f"s{i}" for i in range(6)]
        devhub.faults.slow_partition("events", "2", delay_seconds=0)
        await send(cs, ["fast"], partition_id="2")
        await collector.wait_count(7)
    finally:
        await collector.close()


async def test_not_found_detach_surfaces_to_a_producer_without_retries(devhub):
    cs = devhub.connection_string("events")
    async with EventHubProducerClient.from_connection_string(cs, retry_total=0) as producer:
        await producer.send_event(EventData("one"), partition_id="0")
        devhub.faults.detach_links(error="amqp:not-found", hub="events")
        try:
            await producer.send_event(EventData("two"), partition_id="0")
        except EventHubError as exc:
            assert "not-found" in repr(exc) or "DevHub fault injection" in str(exc)
        else:
            raise AssertionError("a detached link with amqp:not-found must fail the send when retries are off")


async def test_garbage_protocol_header_gets_amqp_header_and_close(devhub):
    reader, writer = await asyncio.open_connection("127.0.0.1", devhub.port)
    try:
        writer.write(b"HTTP/1.1")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    assert answer == b"AMQP\x00\x01\x00\x00"


async def test_malformed_frame_closes_the_connection(devhub):
    reader, writer = await asyncio.open_connection("127.0.0.1", devhub.port)
    try:
        writer.write(b"AMQP\x00\x01\x00\x00")
        assert await asyncio.wait_for(reader.readexactly(8), 10) == b"AMQP\x00\x01\x00\x00"
        # A frame whose body holds an unknown constructor (0xff).
        writer.write(b"\x00\x00\x00\x0c\x02\x00\x00\x00\x00\x53\x10\xff")
        rest = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    assert rest == b""  # before open there is no channel to report on: the hub just hangs up
