"""Two processors sharing partitions through BlobCheckpointStore on Azurite, and resuming after restarts."""

import asyncio

from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore

from processor.hub.devhub import DevHub, HubSpec

from .helpers import Collector, close_all, consumer, eventually, send, send_partitions

CONTAINER = "checkpoints"


def processor(hub, azurite):
    store = BlobCheckpointStore.from_connection_string(azurite.connection_string, CONTAINER)
    client = consumer(hub.connection_string("events"), checkpoint_store=store, load_balancing_interval=0.5,
                      partition_ownership_expiration_interval=3)
    collector = Collector(client, checkpoint=True, starting_position="-1")
    collector.store = store
    return collector


async def close_processors(*collectors):
    await close_all(*collectors)
    for c in collectors:
        await c.store.close()


async def wait_for_owners(store, port, count, timeout=30.0):
    """Poll the checkpoint store until `count` processors own the 4 partitions in equal shares."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        ownership = await store.list_ownership(f"127.0.0.1:{port}", "events", "$default")
        owners = {o["partition_id"]: o["owner_id"] for o in ownership}
        shares = sorted(list(owners.values()).count(o) for o in set(owners.values()))
        if len(owners) == 4 and shares == [4 // count] * count:
            return owners
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"ownership did not settle on {count} owners: {owners}")
        await asyncio.sleep(0.2)  # poll interval of an external store, not synchronisation


async def test_processors_share_partitions_and_resume_from_checkpoints(tmp_path, azurite):
    await azurite.create_container(CONTAINER)
    spec = [HubSpec("events", partitions=4)]
    hub = DevHub(spec, port=0, data_dir=tmp_path / "hub")
    await hub.start()
    port = hub.port
    try:
        cs = hub.connection_string("events")
        initial = {p: [f"p{p}-{i}" for i in range(10)] for p in "0123"}
        expected = {body for bodies in initial.values() for body in bodies}
        await send_partitions(cs, initial)

        first, second = processor(hub, azurite).start(), processor(hub, azurite).start()
        try:
            both = lambda: set(first.bodies()) | set(second.bodies())  # noqa: E731
            # Deadlines, not delays: generous because a take-over (link stolen, re-claim) is slow on a busy machine.
            await eventually(lambda: both() >= expected, timeout=60, what="all 40 events across both processors")
            await wait_for_owners(first.store, port, 2, timeout=60)
            await eventually(lambda: sorted(len(r) for r in hub._owners.values()) == [1, 1, 1, 1], timeout=60,
                             what="every partition read by exactly one link")
            # Once the hand-over has settled, each round of new events is split between the two owners.
            # (A round sent mid-hand-over may still go to the old owner, hence the retry.)
            for attempt in range(20):
                round_ = {f"more{attempt}-{p}" for p in "0123"}
                await send_partitions(cs, {p: [f"more{attempt}-{p}"] for p in "0123"})
                await eventually(lambda: both() >= round_, timeout=30, what="a round of new events")
                if round_ & set(first.bodies()) and round_ & set(second.bodies()):
                    break
            else:
                raise AssertionError("the two processors never shared a round of events")
        finally:
            await close_processors(first, second)

        # Events that arrive while no processor runs, then a restart of the hub (same port, same data) and of Azurite.
        late = {f"late-{p}" for p in "0123"}
        await send_partitions(cs, {p: [f"late-{p}"] for p in "0123"})
        await hub.stop()
        await azurite.stop()
        await azurite.start()
        hub = DevHub(spec, port=port, data_dir=tmp_path / "hub")
        await hub.start()
        assert hub.port == port
        assert hub.partition_info("events", "0")["last_enqueued_sequence_number"] == 11

        resumed = processor(hub, azurite).start()
        try:
            await resumed.wait(lambda c: set(c.bodies()) >= late, timeout=30, what="the events sent while stopped")
            await send(cs, ["fresh"], partition_id="0")
            await resumed.wait(lambda c: "fresh" in c.bodies(), what="an event sent after the restart")
        finally:
            await close_processors(resumed)
        # Only what came after the checkpoints: nothing from before is replayed.
        assert sorted(resumed.bodies()) == sorted(late | {"fresh"})
    finally:
        await hub.stop()
