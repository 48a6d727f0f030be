"""A message whose AMQP body is a value or a sequence section holds no event: it is dead-lettered with its
body kind and the partition goes on (it used to close and reopen the partition every ~10 s, forever)."""

import asyncio

from azure.eventhub import EventData
from azure.eventhub.amqp import AmqpAnnotatedMessage

from processor.hub.checkpoints import close_checkpoint_store, open_checkpoint_store
from processor.hub.clients import namespace, producer_client
from processor.stores.registry import open_store
from processor.worker.app import run_worker
from tests.builders import body, model_event
from tests.worker.helpers import HUB, until, worker_settings


async def test_value_and_sequence_bodies_are_dead_lettered_and_the_checkpoint_passes_them(devhub, tmp_path):
    settings = worker_settings(devhub, tmp_path)
    async with producer_client(settings) as producer:
        batch = await producer.create_batch(partition_id="0")
        batch.add(AmqpAnnotatedMessage(value_body={"eventType": "not in a data section"}))
        batch.add(AmqpAnnotatedMessage(sequence_body=[[1, 2], ["three"]]))
        batch.add(EventData(body(model_event("m", 1))))
        await producer.send_batch(batch)
    last = devhub.partition_info(HUB, "0")["last_enqueued_sequence_number"]

    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, stop))
    checkpoints = await open_checkpoint_store(settings)

    async def checkpointed_past_all() -> bool:
        marks = {
            c["partition_id"]: c["sequence_number"]
            for c in await checkpoints.list_checkpoints(namespace(settings), HUB, "$Default")
        }
        return marks.get("0") == last

    try:
        await until(checkpointed_past_all, 30, "the checkpoint to pass both non-data messages")
    finally:
        stop.set()
        done = await worker
        await close_checkpoint_store(checkpoints)
    store = open_store(settings.store_url)
    await store.open()
    try:
        letters = await store.dead_letters()
        rows = [r async for r in store.export()]
    finally:
        await store.close()
    assert sorted(d["reason"].split(":")[0] for d in letters) == ["AMQP sequence body", "AMQP value body"]
    assert any("not in a data section" in d["body"] for d in letters)
    assert [r.object for r in rows] == ["models/m"]
    assert done.tally.count("dead_lettered") == 2 and done.tally.count("applied") == 1
