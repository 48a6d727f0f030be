"""Retention and on-disk persistence of partition logs."""

from azure.eventhub import EventData
from azure.eventhub.aio import EventHubProducerClient

from devhub import DevHub, HubSpec

from .helpers import Collector, consumer, eventually, send


async def test_log_survives_a_restart_on_the_same_port(tmp_path):
    spec = [HubSpec("events", partitions=2)]
    async with DevHub(spec, data_dir=tmp_path) as hub:
        port = hub.port
        await send(hub.connection_string("events"), ["a", "b", "c"], partition_id="1")
        before = hub.partition_info("events", "1")
    async with DevHub(spec, port=port, data_dir=tmp_path) as hub:
        assert hub.port == port
        assert hub.partition_info("events", "1") == before
        cs = hub.connection_string("events")
        await send(cs, ["d"], partition_id="1")
        collector = Collector(consumer(cs), partition_id="1", starting_position="-1").start()
        try:
            events = await collector.wait_count(4)
        finally:
            await collector.close()
    assert collector.bodies() == ["a", "b", "c", "d"]
    assert [e.sequence_number for _, e in events] == [0, 1, 2, 3]
    assert int(events[3][1].offset) > int(before["last_enqueued_offset"])


async def test_retention_by_count_keeps_the_newest_events(tmp_path):
    spec = [HubSpec("events", partitions=1, retention_events=5)]
    async with DevHub(spec, data_dir=tmp_path) as hub:
        cs = hub.connection_string("events")
        async with EventHubProducerClient.from_connection_string(cs) as producer:
            for i in range(12):
                await producer.send_event(EventData(f"n{i}"))
        info = hub.partition_info("events", "0")
        assert info["beginning_sequence_number"] == 7
        assert info["last_enqueued_sequence_number"] == 11
        collector = Collector(consumer(cs), partition_id="0", starting_position="-1").start()
        try:
            await collector.wait_count(5)
        finally:
            await collector.close()
        assert collector.bodies() == [f"n{i}" for i in range(7, 12)]
        # A reader asking for a trimmed sequence number starts at the oldest retained event.
        old = Collector(consumer(cs), partition_id="0", starting_position=2, starting_position_inclusive=True).start()
        try:
            await old.wait_count(5)
        finally:
            await old.close()
        assert old.bodies() == [f"n{i}" for i in range(7, 12)]
    async with DevHub(spec, data_dir=tmp_path) as hub:
        assert hub.partition_info("events", "0")["beginning_sequence_number"] == 7


async def test_retention_by_age_empties_the_partition(tmp_path):
    async with DevHub([HubSpec("events", partitions=1, retention_seconds=0.3)]) as hub:
        await send(hub.connection_string("events"), ["short-lived"])
        assert not hub.partition_info("events", "0")["is_empty"]
        await eventually(lambda: hub.partition_info("events", "0")["is_empty"], timeout=10, what="age retention")
        info = hub.partition_info("events", "0")
        assert info["last_enqueued_sequence_number"] == 0
        assert info["beginning_sequence_number"] == 1


async def test_many_events_across_compaction(tmp_path):
    # Enough events to push the in-memory lists and the file through compaction.
    spec = [HubSpec("events", partitions=1, retention_events=1500)]
    async with DevHub(spec, data_dir=tmp_path) as hub:
        cs = hub.connection_string("events")
        async with EventHubProducerClient.from_connection_string(cs) as producer:
            for round_ in range(5):
                batch = await producer.create_batch()
                for i in range(1000):
                    batch.add(EventData(f"{round_}-{i}"))
                await producer.send_batch(batch)
        info = hub.partition_info("events", "0")
        assert (info["beginning_sequence_number"], info["last_enqueued_sequence_number"]) == (3500, 4999)
    async with DevHub(spec, data_dir=tmp_path) as hub:
        assert hub.partition_info("events", "0") == info
        collector = Collector(
            consumer(hub.connection_string("events")),
            partition_id="0",
            starting_position=4990,
            starting_position_inclusive=True,
        ).start()
        try:
            await collector.wait_count(10)
        finally:
            await collector.close()
        assert collector.bodies() == [f"4-{i}" for i in range(990, 1000)]
    assert (tmp_path / "events" / "0.log").stat().st_size < 1500 * 200
