"""Lag as KEDA's azure-eventhub scaler computes it, case by case, and a caught-up worker's lag under the
threshold the deploy manifests ship."""

import asyncio

import pytest

from processor.hub.checkpoints import close_checkpoint_store, open_checkpoint_store
from processor.hub.clients import consumer_client, producer_client
from processor.hub.status import DESIGN_RATE_PER_REPLICA, INT64_MAX, keda_lag, keda_total, lag_note, partition_status
from processor.sim.traffic import deliver, lifecycle
from processor.worker.app import run_worker
from processor.worker.simulate import publish
from tests.worker.helpers import until, worker_settings

MAX = INT64_MAX


@pytest.mark.parametrize(
    "last, begin, checkpoint, expected",
    [
        (-1, 0, None, 0),  # never written to
        (-1, 0, 5, 0),  # never written to, whatever the checkpoint says
        (99, 0, None, 100),  # no checkpoint: every retained event
        (0, 0, None, 1),  # the first event ever, no checkpoint
        (7, 7, None, 0),  # one retained event past 0 and no checkpoint: KEDA counts none
        (99, 50, 99, 0),  # caught up
        (99, 0, 90, 9),
        (99, 100, 50, 49),  # emptied by retention (begin past last): the events past the checkpoint still count
        (10, 0, 5000, 0),  # checkpoint ahead by less than the stale threshold (10,000): taken as stale info
        (10, 0, 50_000, MAX - 50_000 + 10),  # ahead by more: wraps around, nearly 2^63
    ],
)
def test_partition_lag_follows_kedas_rules(last, begin, checkpoint, expected):
    assert keda_lag(last, begin, checkpoint) == expected


def test_the_total_is_capped_at_partitions_times_threshold_and_saturates():
    assert keda_total([10, 20], 64) == 30
    assert keda_total([1000, 1000], 64) == 2 * 64
    assert keda_total([MAX - 10, MAX - 10], 64) == 2 * 64


def test_notes_explain_the_surprising_cases():
    assert "ahead" in lag_note(10, 0, False, 50_000)
    assert "counts none" in lag_note(7, 7, False, None)
    assert "retention" in lag_note(99, 100, True, 50)
    assert lag_note(99, 0, False, 90) is None


def shipped_threshold() -> int:
    from tests.deploy.deploykit import DEPLOY_DIR, load_yaml

    scaled = load_yaml(DEPLOY_DIR / "scaledobject.yaml")
    return int(scaled["spec"]["triggers"][0]["metadata"]["unprocessedEventThreshold"])


async def test_a_caught_up_worker_keeps_kedas_lag_under_the_shipped_threshold(devhub, azurite, tmp_path):
    from processor.config import Settings

    defaults = Settings()
    # The shipped reorder window and checkpoint interval: what the threshold was derived from.
    settings = worker_settings(
        devhub,
        tmp_path,
        checkpoint_connection_string=azurite.connection_string,
        checkpoint_container="checkpoints",
        reorder_window=defaults.reorder_window,
        checkpoint_every_seconds=defaults.checkpoint_every_seconds,
        checkpoint_every_events=defaults.checkpoint_every_events,
    )
    threshold = shipped_threshold()
    messages = list(deliver(lifecycle(14_000, seed=5), seed=6))
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, stop))
    checkpoints = await open_checkpoint_store(settings)
    samples: list[int] = []
    try:
        async with producer_client(settings) as producer, consumer_client(settings) as hub:
            sender = asyncio.create_task(publish(producer, messages, rate=DESIGN_RATE_PER_REPLICA))

            async def every_partition_checkpointed() -> bool:
                rows = await partition_status(settings, checkpoints, client=hub)
                return all(r["checkpoint_sequence_number"] is not None for r in rows)

            await until(every_partition_checkpointed, 30, "a checkpoint on every partition")
            while not sender.done():
                rows = await partition_status(settings, checkpoints, client=hub)
                samples.append(keda_total([r["lag"] for r in rows], threshold))
                await asyncio.sleep(0.1)  # a sampling period, not a synchronisation
            await sender
    finally:
        stop.set()
        await worker
        await close_checkpoint_store(checkpoints)
    assert len(samples) >= 5
    assert max(samples) < threshold, f"KEDA would scale out a caught-up worker: lag samples {samples}"
