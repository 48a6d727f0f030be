"""Shutdown, take-over, hub faults and a checkpoint-store outage: each ends with nothing lost."""

import asyncio
import signal
import time

from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore

from processor.hub.checkpoints import SqliteCheckpointStore
from processor.hub.clients import namespace, producer_client
from processor.sim.traffic import deliver, lifecycle
from processor.stores.sqlite import SqliteStore
from processor.worker.app import WorkerOptions, run_worker
from processor.worker.simulate import publish
from tests.worker.helpers import PROCESSOR, checkpoints_at_end, clean_env, oracle, projection, until, worker_settings


def env_of(settings, **extra) -> dict:
    return {
        **clean_env(),
        "PROCESSOR_EVENTHUB_CONNECTION_STRING": settings.eventhub_connection_string,
        "PROCESSOR_STORE_URL": settings.store_url,
        "PROCESSOR_CHECKPOINT_URL": settings.checkpoint_url,
        "PROCESSOR_LOAD_BALANCING_INTERVAL": str(settings.load_balancing_interval),
        "PROCESSOR_CHECKPOINT_EVERY_SECONDS": "0.2",
        "PROCESSOR_LOG_LEVEL": "WARNING",
        **extra,
    }


async def object_count(url: str) -> int:
    store = SqliteStore(url)
    await store.open()
    try:
        return (await store.counts())["objects"]
    finally:
        await store.close()


async def test_sigterm_commits_what_the_reorder_window_holds_checkpoints_and_releases_ownership(devhub, tmp_path):
    messages = list(deliver(lifecycle(1500, seed=31), seed=32))
    # Ownership would take a minute to expire: the follower below only gets the partitions at once if released.
    settings = worker_settings(devhub, tmp_path, ownership_expiration=60.0)
    env = env_of(
        settings,
        PROCESSOR_REORDER_WINDOW="30",
        PROCESSOR_REORDER_MAX_EVENTS="200",
        PROCESSOR_OWNERSHIP_EXPIRATION="60",
        PROCESSOR_SHUTDOWN_TIMEOUT="10",
    )
    with open(tmp_path / "worker.log", "wb") as log:
        proc = await asyncio.create_subprocess_exec(
            str(PROCESSOR), "run", "--no-http", env=env, cwd=tmp_path, stdout=log, stderr=log
        )
        async with producer_client(settings) as producer:
            await publish(producer, messages)
        # The buffer's bound (200) pushes the oldest out early, so objects appear while the rest wait 30 s.
        await until(lambda: object_count(settings.store_url), 60, "the worker to apply its first objects")
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 20)
    assert code == 0, (tmp_path / "worker.log").read_text()
    assert time.monotonic() - started < 15  # the shutdown bound (10 s) and then some, far below the 30 s window

    checkpoints = SqliteCheckpointStore(settings.checkpoint_url)
    owners = await checkpoints.list_ownership(namespace(settings), "events", "$Default")
    assert owners and all(o["owner_id"] == "" for o in owners)  # released for the next replica

    stop = asyncio.Event()
    follower = asyncio.create_task(run_worker(settings, stop))
    await until(lambda: checkpoints_at_end(checkpoints, settings, devhub, 4), 30, "the follower to finish the rest")
    stop.set()
    await follower
    await checkpoints.close()
    assert await projection(settings.store_url) == await oracle(messages, tmp_path)


async def test_a_killed_owner_is_taken_over_after_its_ownership_expires(devhub, tmp_path):
    messages = list(deliver(lifecycle(2000, seed=41), seed=42))
    settings = worker_settings(devhub, tmp_path, ownership_expiration=3.0)
    env = env_of(settings, PROCESSOR_OWNERSHIP_EXPIRATION="3", PROCESSOR_REORDER_WINDOW="0.3")
    with open(tmp_path / "worker.log", "wb") as log:
        proc = await asyncio.create_subprocess_exec(
            str(PROCESSOR), "run", "--no-http", env=env, cwd=tmp_path, stdout=log, stderr=log
        )
        async with producer_client(settings) as producer:
            await publish(producer, messages[:1000])
            await until(lambda: object_count(settings.store_url), 60, "the first owner to apply something")
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
            await publish(producer, messages[1000:])

    checkpoints = SqliteCheckpointStore(settings.checkpoint_url)
    stop = asyncio.Event()
    opened = []
    killed_at = time.monotonic()

    async def started(worker):
        original = worker.open_partition

        def spy(pid):
            opened.append((pid, time.monotonic() - killed_at))
            original(pid)

        worker.open_partition = spy

    successor = asyncio.create_task(run_worker(settings, stop, WorkerOptions(on_started=started)))
    await until(lambda: checkpoints_at_end(checkpoints, settings, devhub, 4), 60, "the successor to finish")
    stop.set()
    await successor
    await checkpoints.close()
    assert sorted(pid for pid, _ in opened) == ["0", "1", "2", "3"]
    assert await projection(settings.store_url) == await oracle(messages, tmp_path)


async def test_hub_faults_surface_as_the_service_would_and_lose_nothing(devhub, tmp_path):
    messages = list(deliver(lifecycle(3000, seed=51), seed=52))
    settings = worker_settings(devhub, tmp_path)
    checkpoints = SqliteCheckpointStore(settings.checkpoint_url)
    stop = asyncio.Event()
    worker_box = []
    task = asyncio.create_task(
        run_worker(settings, stop, WorkerOptions(stall_check_interval=0.5, on_started=lambda w: worker_box.append(w)))
    )
    async with producer_client(settings) as producer:
        publishing = asyncio.create_task(publish(producer, messages, rate=1500))
        await until(lambda: worker_box and worker_box[0].tally.read > 200, 30, "the worker to receive")
        worker = worker_box[0]

        devhub.faults.drop_connections()
        devhub.faults.detach_links(error="com.microsoft:server-busy")
        read = worker.tally.read
        await until(lambda: worker.tally.read > read + 100, 30, "receiving again after dropped links")

        devhub.faults.pause_partition("events", "1")
        await until(
            lambda: "1" in worker.partitions and worker.partitions["1"].stalled,
            30,
            "the paused partition to be reported stalled",
        )
        devhub.faults.resume_partition("events", "1")
        devhub.faults.slow_partition("events", "2", delay_seconds=0.05)
        await publishing
        devhub.faults.slow_partition("events", "2", delay_seconds=0)
    await until(lambda: checkpoints_at_end(checkpoints, settings, devhub, 4), 60, "checkpoints at the end")
    assert not worker.partitions["1"].stalled
    stop.set()
    await task
    await checkpoints.close()
    assert await projection(settings.store_url) == await oracle(messages, tmp_path)


async def test_checkpoint_store_outage_keeps_applying_and_checkpoints_catch_up_after(devhub, azurite, tmp_path):
    messages = list(deliver(lifecycle(2000, seed=61), seed=62))
    settings = worker_settings(
        devhub, tmp_path, checkpoint_connection_string=azurite.connection_string, checkpoint_container="checkpoints"
    )
    watcher = BlobCheckpointStore.from_connection_string(azurite.connection_string, "checkpoints")
    stop = asyncio.Event()
    worker_box = []
    task = asyncio.create_task(run_worker(settings, stop, WorkerOptions(on_started=lambda w: worker_box.append(w))))
    async with producer_client(settings) as producer, watcher:
        await publish(producer, messages[:1000])
        await until(lambda: checkpoints_at_end(watcher, settings, devhub, 4), 60, "checkpoints before the outage")
        await azurite.stop()
        await publish(producer, messages[1000:])
        expected = await oracle(messages, tmp_path)
        # The store keeps being written while checkpoints cannot be.
        await until(lambda: _matches(settings.store_url, expected), 60, "every event applied during the outage")
        worker = worker_box[0]
        await until(lambda: worker.checkpoint_streak.failures > 0, 30, "checkpoint writes to fail")
        await azurite.start()
        await until(lambda: checkpoints_at_end(watcher, settings, devhub, 4), 60, "checkpoints to catch up")
    assert worker.checkpoint_streak.failures == 0
    stop.set()
    await task


async def _matches(url, expected) -> bool:
    return await projection(url) == expected
