"""`processor replay --from capture:PATH`: Capture files of a prefix of each partition (written from what the local hub
really holds, with its sequence numbers and offsets), then the hub from where each partition's Capture ends: the
projection equals file ingest of everything, no message is read twice, and with --checkpoint-live the live
consumer group's checkpoints land where the rebuild stopped (a newer one stays)."""

from __future__ import annotations

import asyncio

import orjson

from processor.hub.checkpoints import SqliteCheckpointStore
from processor.hub.clients import consumer_client, producer_client
from processor.sim.traffic import deliver, lifecycle
from processor.worker.simulate import publish
from tests.support.capture import Record, capture_files, write_folder
from tests.worker.helpers import HUB, oracle, projection, until, worker_settings
from tests.worker.test_end_to_end import run_processor


async def hub_records(settings, count: int) -> dict[str, list[Record]]:
    """Every message in the hub, per partition, as Capture would have written it (a bare SDK consumer)."""
    got: dict[str, list[Record]] = {}

    async def on_batch(context, events) -> None:
        for e in events:
            props = {
                (k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                for k, v in (e.properties or {}).items()
            }
            body = b"".join(bytes(part) for part in e.body)
            record = Record(e.sequence_number, str(e.offset), body, e.enqueued_time, props)
            got.setdefault(context.partition_id, []).append(record)

    client = consumer_client(settings, consumer_group="$Default")
    receiving = asyncio.create_task(client.receive_batch(on_batch, starting_position="-1", max_wait_time=0.5))
    try:
        await until(lambda: sum(map(len, got.values())) >= count, 60, f"{count} messages read off the hub")
    finally:
        await client.close()
        receiving.cancel()
    return got


async def test_a_capture_prefix_then_the_hub_rebuilds_everything_once_and_moves_live_checkpoints(devhub, tmp_path):
    messages = list(deliver(lifecycle(1500, seed=31), seed=32))
    first, later = messages[:900], messages[900:]
    settings = worker_settings(devhub, tmp_path)
    async with producer_client(settings) as producer:
        await publish(producer, first)
    held = await hub_records(settings, len(first))
    assert sorted(held) == ["0", "1", "2", "3"]

    # Capture lags differently per partition: all of partition 0, half of 1, nothing of 2, a third of 3.
    cut = {"0": len(held["0"]), "1": len(held["1"]) // 2, "2": 0, "3": len(held["3"]) // 3}
    captured = {pid: records[: cut[pid]] for pid, records in held.items() if cut[pid]}
    write_folder(tmp_path / "capture", capture_files(captured, per_file=40, namespace="devns", hub=HUB))
    async with producer_client(settings) as producer:
        await publish(producer, later)  # after the cut: only in the hub

    # The live consumer group: partition 0's checkpoint is past anything the rebuild reaches, partition 1's behind.
    live = SqliteCheckpointStore(settings.checkpoint_url)
    ns = f"127.0.0.1:{devhub.port}"
    ids = {"fully_qualified_namespace": ns, "eventhub_name": HUB, "consumer_group": "$Default"}
    await live.update_checkpoint({**ids, "partition_id": "0", "offset": "999999999", "sequence_number": 10**6})
    await live.update_checkpoint({**ids, "partition_id": "1", "offset": held["1"][2].offset, "sequence_number": 2})
    # A live worker still owns partition 3 (a fresh claim): the hand-off warns that it will overwrite the checkpoint.
    await live.claim_ownership([{**ids, "partition_id": "3", "owner_id": "live-worker", "etag": None}])

    env = {
        "PROCESSOR_EVENTHUB_CONNECTION_STRING": settings.eventhub_connection_string,
        "PROCESSOR_CHECKPOINT_URL": settings.checkpoint_url,
        "PROCESSOR_REORDER_WINDOW": "0.2",
    }
    rebuilt = f"sqlite:///{tmp_path}/rebuilt.sqlite"
    argv = ["replay", "--from", f"capture:{tmp_path / 'capture'}", "--store", rebuilt, "--checkpoint-live", "--json"]
    code, out, err = await run_processor(argv, env, tmp_path)
    assert code == 0, err.decode()
    summary = orjson.loads(out.splitlines()[-1])
    assert b"partitions 3 of consumer group '$Default' are owned by a running worker" in err

    assert await projection(rebuilt) == await oracle(messages, tmp_path)
    # Each message once: Capture's records, then exactly the rest from the hub (none twice in the gap).
    assert summary["capture_records"] == sum(cut.values())
    assert summary["hub_messages"] == len(messages) - sum(cut.values())
    last = {pid: devhub.partition_info(HUB, pid) for pid in cut}
    assert summary["ends"] == {pid: info["last_enqueued_sequence_number"] for pid, info in last.items()}

    marks = {c["partition_id"]: c for c in await live.list_checkpoints(ns, HUB, "$Default")}
    await live.close()
    assert marks["0"]["sequence_number"] == 10**6  # never moved back
    for pid in ("1", "2", "3"):
        assert marks[pid]["sequence_number"] == last[pid]["last_enqueued_sequence_number"]
        assert marks[pid]["offset"] == last[pid]["last_enqueued_offset"]


async def test_events_that_left_the_hub_before_the_rebuild_reached_them_are_reported_not_passed_over(tmp_path):
    from devhub import DevHub, HubSpec

    messages = list(deliver(lifecycle(100, seed=41), seed=42))[:100]
    spec = HubSpec(name=HUB, partitions=1, consumer_groups=("$Default", "replay"), retention_events=50)
    async with DevHub([spec]) as hub:
        settings = worker_settings(hub, tmp_path)
        async with producer_client(settings) as producer:
            await publish(producer, messages[:10])
            held = await hub_records(settings, 10)
            await publish(producer, messages[10:])  # the hub keeps the last 50: 10..49 are gone
        write_folder(tmp_path / "capture", capture_files(held, per_file=40, hub=HUB))
        env = {
            "PROCESSOR_EVENTHUB_CONNECTION_STRING": settings.eventhub_connection_string,
            "PROCESSOR_CHECKPOINT_URL": settings.checkpoint_url,
            "PROCESSOR_REORDER_WINDOW": "0.2",
        }
        rebuilt = f"sqlite:///{tmp_path}/rebuilt.sqlite"
        argv = [
            "replay",
            "--from",
            f"capture:{tmp_path / 'capture'}",
            "--store",
            rebuilt,
            "--checkpoint-live",
            "--json",
        ]
        code, out, err = await run_processor(argv, env, tmp_path)
    assert code == 1, err.decode()
    assert b"partition 0: events 10..49 are neither in Capture nor still in the hub" in err
    summary = orjson.loads(out.splitlines()[-1])
    assert summary["handoff_gaps"] == 1 and summary["hub_messages"] == 50


def test_a_gap_is_what_neither_capture_nor_the_hub_still_holds():
    from processor.handoff import hub_gaps

    def part(begin: int, last: int, empty: bool = False) -> dict:
        return {"beginning_sequence_number": begin, "last_enqueued_sequence_number": last, "is_empty": empty}

    start = {"0": 9, "1": 9, "2": -1, "3": 40, "4": 9, "5": -1}
    props = {
        "0": part(10, 99),  # the hub goes on right after Capture
        "1": part(50, 99),  # retention passed 10..49
        "2": part(0, -1, empty=True),  # never written to
        "3": part(60, 59, empty=True),  # emptied by retention after 41..59 were enqueued
        "4": part(3, 99),  # the hub still holds some of what Capture has: an overlap, harmless
        "5": part(7, 99),  # no Capture file, the hub begins past 0
    }
    assert hub_gaps(start, props) == [
        "partition 1: events 10..49 are neither in Capture nor still in the hub (it holds from 50 on): "
        "the projection misses them",
        "partition 3: events 41..59 are neither in Capture nor still in the hub (it holds from 60 on): "
        "the projection misses them",
        "partition 5: events 0..6 are neither in Capture nor still in the hub (it holds from 7 on): "
        "the projection misses them",
    ]
