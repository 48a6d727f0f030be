"""The lag KEDA computes from the checkpoint blobs equals `processor status`'s; a projection store outage is
retried and never advances a checkpoint."""

import asyncio

import orjson
from azure.storage.blob.aio import ContainerClient

from processor.hub.checkpoints import SqliteCheckpointStore
from processor.hub.clients import namespace, producer_client
from processor.sim.traffic import deliver, lifecycle
from processor.worker.app import WorkerOptions, run_worker
from processor.worker.simulate import publish
from tests.worker.helpers import PROCESSOR, checkpoints_at_end, clean_env, oracle, projection, until, worker_settings


async def keda_lag(azurite, settings, hub) -> dict[str, int]:
    """What KEDA's azure-eventhub scaler computes with checkpointStrategy blobMetadata: per partition, the
    last enqueued sequence number minus the `sequencenumber` metadata of `<ns>/<hub>/<group>/checkpoint/<id>`."""
    prefix = f"{namespace(settings)}/events/$default/checkpoint/".lower()
    marks = {}
    async with ContainerClient.from_connection_string(azurite.connection_string, "checkpoints") as container:
        async for blob in container.list_blobs(name_starts_with=prefix, include=["metadata"]):
            marks[blob.name.rsplit("/", 1)[1]] = int(blob.metadata["sequencenumber"])
    lags = {}
    for pid in map(str, range(4)):
        info = hub.partition_info("events", pid)
        lags[pid] = (
            0
            if info["is_empty"]
            else info["last_enqueued_sequence_number"] - marks.get(pid, info["beginning_sequence_number"] - 1)
        )
    return lags


async def test_keda_lag_from_the_checkpoint_blobs_equals_processor_status(devhub, azurite, tmp_path):
    from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore

    settings = worker_settings(
        devhub, tmp_path, checkpoint_connection_string=azurite.connection_string, checkpoint_container="checkpoints"
    )
    first, later = list(deliver(lifecycle(600, seed=71), seed=72)), list(deliver(lifecycle(300, seed=73), seed=74))
    stop = asyncio.Event()
    worker = asyncio.create_task(run_worker(settings, stop))
    async with producer_client(settings) as producer:
        await publish(producer, first)
        async with BlobCheckpointStore.from_connection_string(azurite.connection_string, "checkpoints") as watch:
            await until(lambda: checkpoints_at_end(watch, settings, devhub, 4), 60, "checkpoints at the end")
        stop.set()
        await worker
        await publish(producer, later)  # nobody consumes these: they are the lag

    env = {
        **clean_env(),
        "PROCESSOR_EVENTHUB_CONNECTION_STRING": settings.eventhub_connection_string,
        "PROCESSOR_CHECKPOINT_CONNECTION_STRING": azurite.connection_string,
        "PROCESSOR_CHECKPOINT_CONTAINER": "checkpoints",
    }
    proc = await asyncio.create_subprocess_exec(
        str(PROCESSOR),
        "status",
        "--json",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    status = {row["partition"]: row["lag"] for row in map(orjson.loads, out.splitlines())}  # JSON Lines
    keda = await keda_lag(azurite, settings, devhub)
    assert status == keda
    assert sum(keda.values()) == len(later)
    # For people: the same rows, and the total KEDA acts on (under the threshold: as it is).
    proc = await asyncio.create_subprocess_exec(
        str(PROCESSOR),
        "status",
        "--table",  # into a pipe the default is JSON Lines
        "--keda-threshold",
        "100000",
        env=env,
        cwd=tmp_path,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert (
        f"total lag {len(later)}; KEDA at unprocessedEventThreshold 100000 acts on {len(later)}: 1 replica"
        in out.decode()
    )


async def test_a_projection_store_outage_is_retried_and_never_advances_a_checkpoint(
    devhub, postgres_store_url, tmp_path
):
    from dataclasses import replace

    from tests.stores.conftest import admin_execute

    database = postgres_store_url.rsplit("/", 1)[1]
    settings = replace(worker_settings(devhub, tmp_path), store_url=postgres_store_url)
    messages = list(deliver(lifecycle(1600, seed=81), seed=82))
    checkpoints = SqliteCheckpointStore(settings.checkpoint_url)
    ids = (namespace(settings), "events", "$Default")
    stop, box = asyncio.Event(), []
    task = asyncio.create_task(run_worker(settings, stop, WorkerOptions(on_started=box.append)))
    async with producer_client(settings) as producer:
        await publish(producer, messages[:800])
        await until(lambda: checkpoints_at_end(checkpoints, settings, devhub, 4), 60, "checkpoints before the outage")
        before = await checkpoints.list_checkpoints(*ids)

        await admin_execute(
            f"ALTER DATABASE {database} ALLOW_CONNECTIONS false",
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'",
        )
        try:
            await publish(producer, messages[800:])
            worker = box[0]
            await until(lambda: worker.store_streak.failures >= 3, 60, "commits to fail and be retried")
            assert await checkpoints.list_checkpoints(*ids) == before  # nothing uncommitted is checkpointed
            assert not worker.store_healthy
        finally:
            await admin_execute(f"ALTER DATABASE {database} ALLOW_CONNECTIONS true")
        await until(lambda: checkpoints_at_end(checkpoints, settings, devhub, 4), 90, "catching up after the outage")
    assert worker.store_healthy
    stop.set()
    await task
    await checkpoints.close()
    assert await projection(settings.store_url) == await oracle(messages, tmp_path)
