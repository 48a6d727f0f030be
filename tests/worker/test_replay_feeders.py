"""`processor replay --feeders N`: several feeder processes, each reading a fixed share of the hub's partitions,
folded through the streaming ingest. Whatever the number of feeders, the projection is file ingest's of the same
bodies; the replay touches no checkpoint store; a message that is not a data section is still dead-lettered."""

import pytest
from azure.eventhub import EventData
from azure.eventhub.amqp import AmqpAnnotatedMessage

from devhub import DevHub, HubSpec
from processor.hub.clients import producer_client
from processor.replay import default_feeders
from processor.sim.traffic import deliver, lifecycle
from processor.stores.registry import open_store
from processor.worker.simulate import publish
from tests.builders import body, model_event
from tests.worker.helpers import HUB, clean_env, oracle, projection, worker_settings
from tests.worker.processes import finish, spawn


async def fill(settings, messages) -> None:
    """`messages` spread over every partition in small batches (so each partition holds duplicates and late
    events of objects whose other events are on other partitions), and one AMQP value body on partition 1."""
    async with producer_client(settings) as producer:
        await publish(producer, messages, batch_size=7)
        batch = await producer.create_batch(partition_id="1")
        batch.add(AmqpAnnotatedMessage(value_body={"eventType": "not in a data section"}))
        batch.add(EventData(body(model_event("after-the-value-body", 1))))
        await producer.send_batch(batch)


async def replay(settings, tmp_path, name, *flags):
    env = {
        **clean_env(),
        "PROCESSOR_EVENTHUB_CONNECTION_STRING": settings.eventhub_connection_string,
        # Named, never created: the replay opens no checkpoint store at all.
        "PROCESSOR_CHECKPOINT_URL": f"sqlite:///{tmp_path}/untouched-checkpoints.sqlite",
        "PROCESSOR_ALLOWED_SOURCES": "",
        "PROCESSOR_LOG_LEVEL": "INFO",
    }
    url = f"sqlite:///{tmp_path}/{name}.sqlite"
    code, out, err = await finish(await spawn("replay", "--store", url, "--json", *flags, env=env, cwd=tmp_path), 120)
    assert code == 0, err
    assert not (tmp_path / "untouched-checkpoints.sqlite").exists()
    return url, out, err


async def dead_letter_reasons(url):
    store = open_store(url)
    await store.open()
    try:
        return sorted(d["reason"] for d in await store.dead_letters())
    finally:
        await store.close()


async def test_two_feeders_replay_the_projection_of_one_feeder_and_of_file_ingest(devhub, tmp_path):
    settings = worker_settings(devhub, tmp_path)
    messages = list(deliver(lifecycle(1500, seed=61), seed=62, duplicate_rate=0.2, late_rate=0.3))
    await fill(settings, messages)
    assert all(not devhub.partition_info(HUB, str(p))["is_empty"] for p in range(4))

    one, _, err = await replay(settings, tmp_path, "one", "--feeders", "1")
    assert "replaying 4 partitions with 1 feeder processes (prefetch 3000, batch 1000)" in err
    two, out, err = await replay(settings, tmp_path, "two", "--feeders", "2")
    assert "replaying 4 partitions with 2 feeder processes" in err
    # Without the flag: a feeder per core (at most one per partition).
    cores, _, err = await replay(settings, tmp_path, "cores")
    assert f"replaying 4 partitions with {min(4, default_feeders())} feeder processes" in err

    expected = await oracle(messages, tmp_path)
    expected_value = {k: v for k, v in (await projection(one)).items() if k[1] == "models/after-the-value-body"}
    assert len(expected_value) == 1
    assert await projection(two) == await projection(one) == await projection(cores) == {**expected, **expected_value}
    reasons = await dead_letter_reasons(two)
    assert reasons == await dead_letter_reasons(one)
    assert [r.split(":")[0] for r in reasons] == ["AMQP value body"]
    assert '"read":' in out and '"dead_lettered":1' in out.replace(" ", "")


async def test_more_feeders_than_partitions_replays_every_partition(tmp_path):
    async with DevHub([HubSpec(name=HUB, partitions=3, consumer_groups=("$Default", "replay"))]) as hub:
        settings = worker_settings(hub, tmp_path)
        messages = list(deliver(lifecycle(600, seed=63), seed=64))
        await fill(settings, messages)
        url, _, err = await replay(settings, tmp_path, "eight", "--feeders", "8")
        assert "replaying 3 partitions with 3 feeder processes" in err
        got = await projection(url)
    expected = await oracle(messages, tmp_path)
    assert {k: v for k, v in got.items() if k[1] != "models/after-the-value-body"} == expected


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
async def test_a_bad_feeders_value_exits_2_naming_the_flag(tmp_path, value):
    env = {**clean_env(), "PROCESSOR_STORE_URL": f"sqlite:///{tmp_path}/p.sqlite"}
    code, out, err = await finish(await spawn("replay", "--feeders", value, env=env, cwd=tmp_path), 60)
    assert code == 2, err
    assert err.strip().splitlines()[-1].startswith("processor: bad setting: --feeders:"), err
    assert repr(value) in err and out == ""


@pytest.mark.parametrize("position", ["latest", "2100-01-01T00:00:00Z"])
async def test_a_replay_from_after_the_last_event_ends_at_once_with_nothing_read(devhub, tmp_path, position):
    settings = worker_settings(devhub, tmp_path)
    await fill(settings, list(deliver(lifecycle(50, seed=65), seed=66)))
    url, out, _ = await replay(settings, tmp_path, "nothing", "--from", position, "--feeders", "2")
    assert '"read":0' in out.replace(" ", "")
    assert await projection(url) == {}
