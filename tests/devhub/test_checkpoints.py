"""Two processors sharing partitions through BlobCheckpointStore on Azurite, and resuming after restarts."""

import asyncio

from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore

from devhub import DevHub, HubSpec

from .helpers import Collector, close_all, consumer, eventually, send, send_partitions

CONTAINER = "checkpoints"


def processor(hub, azurite):
    store = BlobCheckpointStore.from_connection_string(azurite.connection_string, CONTAINER)
    client = consumer(
        hub.connection_string("events"),
        checkpoint_store=store,
        load_balancing_interval=0.5,
        partition_ownership_expiration_interval=3,
    )
    collector = Collector(client, checkpoint=True, starting_position="-1")
    collector.store = store
    return collector


async def close_processors(*collectors):
    await close_all(*collectors)
    for c in collectors:
        await c.store.close()


async def poll_store(read, holds, timeout, what):
    """Poll the checkpoint store (an external service: no event to wait on) until `holds(await read())`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await read()
        if holds(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}: {value}")
        await asyncio.sleep(0.2)  # poll interval of an external store, not synchronisation


async def wait_for_owners(store, port, count, timeout=30.0):
    """Until `count` processors own the 4 partitions in equal shares."""

    def settled(owners):
        shares = sorted(list(owners.values()).count(o) for o in set(owners.values()))
        return len(owners) == 4 and shares == [4 // count] * count

    async def read():
        ownership = await store.list_ownership(f"127.0.0.1:{port}", "events", "$default")
        return {o["partition_id"]: o["owner_id"] for o in ownership}

    return await poll_store(read, settled, timeout, f"ownership to settle on {count} owners")


async def wait_for_checkpoints(store, hub, timeout=30.0):
    """Until every partition's checkpoint names its last event."""

    async def read():
        checkpoints = await store.list_checkpoints(f"127.0.0.1:{hub.port}", "events", "$default")
        return {c["partition_id"]: c["sequence_number"] for c in checkpoints}

    last = {p: hub.partition_info("events", p)["last_enqueued_sequence_number"] for p in "0123"}
    return await poll_store(read, lambda found: found == last, timeout, f"checkpoints at {last}")


class ObservedStore(BlobCheckpointStore):
    """The real blob store, noting for each checkpoint whether the collector had recorded its event by then."""

    collector: Collector

    async def update_checkpoint(self, checkpoint, **kwargs):
        recorded = {e.sequence_number for p, e in self.collector.events if p == checkpoint["partition_id"]}
        self.seen.append((checkpoint["sequence_number"], checkpoint["sequence_number"] in recorded))
        await super().update_checkpoint(checkpoint, **kwargs)


async def test_the_collector_records_an_event_before_checkpointing_it(devhub, azurite):
    # A partition task cancelled during the checkpoint (an equal-epoch take-over) must leave the
    # event recorded: checkpointing first lost it, since the next owner starts after the checkpoint.
    await azurite.create_container(CONTAINER)
    cs = devhub.connection_string("events")
    await send(cs, ["a", "b"], partition_id="0")
    store = ObservedStore.from_connection_string(azurite.connection_string, CONTAINER)
    store.seen = []
    collector = Collector(
        consumer(cs, checkpoint_store=store), checkpoint=True, partition_id="0", starting_position="-1"
    )
    store.collector = collector
    collector.start()
    try:
        await eventually(lambda: len(store.seen) >= 2, what="two checkpoints")
    finally:
        await collector.close()
        await store.close()
    assert store.seen[:2] == [(0, True), (1, True)]


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

        first, second = processor(hub, azurite).start(), None
        try:
            # Azurite accepts a first claim (If-None-Match: *) on an ownership blob that already exists, where
            # the service refuses it: two processors starting together could both believe they own a partition.
            # The second starts once the first owns them all, so its claims carry etags.
            await wait_for_owners(first.store, port, 1, timeout=60)
            second = processor(hub, azurite).start()
            both = lambda: set(first.bodies()) | set(second.bodies())  # noqa: E731
            # Deadlines, not delays: generous because a take-over (link stolen, re-claim) is slow on a busy machine.
            await eventually(lambda: both() >= expected, timeout=60, what="all 40 events across both processors")
            await wait_for_owners(first.store, port, 2, timeout=60)
            await eventually(
                lambda: sorted(len(r) for r in hub._owners.values()) == [1, 1, 1, 1],
                timeout=60,
                what="every partition read by exactly one link",
            )
            # Once the hand-over has settled, each round of new events is split between the two owners.
            # (A round sent mid-hand-over may still go to the old owner, hence the retry.)
            for rounds in range(1, 21):
                round_ = {f"more{rounds}-{p}" for p in "0123"}
                await send_partitions(cs, {p: [f"more{rounds}-{p}"] for p in "0123"})
                await eventually(lambda expected=round_: both() >= expected, timeout=30, what="a round of new events")
                if round_ & set(first.bodies()) and round_ & set(second.bodies()):
                    break
            else:
                raise AssertionError("the two processors never shared a round of events")
            # Records come before checkpoints (at least once): wait until every event is checkpointed, so that
            # what the restart below reads is exactly what came after.
            await wait_for_checkpoints(first.store, hub, timeout=60)
        finally:
            await close_processors(*(c for c in (first, second) if c is not None))

        # Events that arrive while no processor runs, then a restart of the hub (same port, same data) and of Azurite.
        late = {f"late-{p}" for p in "0123"}
        await send_partitions(cs, {p: [f"late-{p}"] for p in "0123"})
        await hub.stop()
        await azurite.stop()
        await azurite.start()
        hub = DevHub(spec, port=port, data_dir=tmp_path / "hub")
        await hub.start()
        assert hub.port == port
        assert hub.partition_info("events", "0")["last_enqueued_sequence_number"] == 10 + rounds

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
