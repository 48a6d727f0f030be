"""Where a keyed event goes: our lookup3 against its published values, and against the SDK's public behaviour
(its buffered producer chooses the partition itself, client-side, before it sends)."""

import asyncio
import random

from azure.eventhub import EventData
from azure.eventhub.aio import EventHubProducerClient
from hypothesis import given
from hypothesis import strategies as st

from devhub import DevHub, HubSpec
from devhub.partition_key import hashlittle2, key_hash, partition_for_key

from .helpers import DEADLINE, Collector, consumer

# Key lengths around lookup3's 12-unit blocks (a key of exactly 12 units is one final block, 13 is mix + final);
# characters from ASCII, Latin-1, the rest of the BMP and beyond it (one unit each for the Python SDK).
ALPHABETS = (
    [chr(c) for c in range(0x20, 0x7F)],
    [chr(c) for c in range(0xA0, 0x100)],
    ["\u0301", "\u4e2d", "\u0416", "\u20ac", "\ufeff", "\uffff"],
    ["\U0001f600", "\U00010000", "\U0010ffff"],
)


def random_keys(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    keys = set()
    while len(keys) < count:
        length = rng.choice([1, 2, 3, 4, 5, 11, 12, 13, 23, 24, 25, rng.randint(1, 80)])
        pool = rng.choice([ALPHABETS[0], ALPHABETS[0], sum(ALPHABETS, [])])
        keys.add("".join(rng.choice(pool) for _ in range(length)))  # never empty: the SDK treats "" as no key
    return sorted(keys)


def test_hashlittle2_gives_the_values_lookup3_publishes():
    # lookup3.c's own self-test (driver5): (c, b) for the empty key and for a 30-byte sentence, with seeds.
    sentence = b"Four score and seven years ago"
    assert hashlittle2(b"") == (0xDEADBEEF, 0xDEADBEEF)
    assert hashlittle2(b"", 0, 0xDEADBEEF) == (0xBD5B7DDE, 0xDEADBEEF)
    assert hashlittle2(b"", 0xDEADBEEF, 0xDEADBEEF) == (0x9C093CCD, 0xBD5B7DDE)
    assert hashlittle2(sentence) == (0x17770551, 0xCE7226E6)
    assert hashlittle2(sentence, 0, 1) == (0xE3607CAE, 0xBD371DE4)
    assert hashlittle2(sentence, 1, 0) == (0xCD628161, 0x6CBEA4B3)


@given(st.text(alphabet=st.characters(max_codepoint=0x7F), min_size=1, max_size=60))
def test_an_ascii_key_hashes_as_its_utf8_bytes_do(key):
    # What the service and the .NET and Java SDKs hash; for ASCII the Python SDK's code points are the same units.
    primary, secondary = hashlittle2(key.encode("utf-8"))
    low = (primary ^ secondary) & 0xFFFF
    assert key_hash(key) == (low - 0x10000 if low & 0x8000 else low)


def test_every_partition_comes_out_of_a_spread_of_keys():
    ids = [str(i) for i in range(7)]
    assert {partition_for_key(key, ids) for key in random_keys(200, seed=3)} == set(ids)


async def test_keyed_events_from_the_sdk_buffered_producer_land_where_partition_for_key_says():
    keys = random_keys(300, seed=20240601)
    assert sum(not key.isascii() for key in keys) > 50, "the keys should mix ASCII and non-ASCII"
    hubs = [HubSpec(name="four", partitions=4), HubSpec(name="seven", partitions=7)]  # 7: negative hashes fold apart
    async with DevHub(hubs) as hub:
        for spec in hubs:
            cs = hub.connection_string(spec.name)
            failed: list[BaseException] = []

            async def on_success(events, partition_id) -> None:
                pass

            async def on_error(events, partition_id, error, failed=failed) -> None:
                failed.append(error)

            producer = EventHubProducerClient.from_connection_string(
                cs, buffered_mode=True, on_success=on_success, on_error=on_error, max_wait_time=0.05
            )
            async with producer:
                for key in keys:
                    await producer.send_event(EventData(key), partition_key=key)
                await asyncio.wait_for(producer.flush(), DEADLINE)
            assert not failed

            collector = Collector(consumer(cs), starting_position="-1").start()
            try:
                events = await collector.wait_count(len(keys))
            finally:
                await collector.close()
            landed = {event.body_as_str(): partition for partition, event in events}
            ids = [str(i) for i in range(spec.partitions)]
            expected = {key: partition_for_key(key, ids) for key in keys}
            wrong = {key: (landed[key], expected[key]) for key in keys if landed[key] != expected[key]}
            assert not wrong, f"{spec.name}: (landed, computed) for {len(wrong)} of {len(keys)} keys: {wrong}"
            assert len(set(landed.values())) == spec.partitions
