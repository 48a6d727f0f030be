"""The worker against the local hub with the real SDK: the same projection as file ingest, whatever the partitioning."""

import asyncio
from dataclasses import replace

import orjson
import pytest
from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore

from processor.hub.clients import producer_client
from processor.sim.traffic import deliver, lifecycle
from processor.worker.app import run_worker
from processor.worker.simulate import publish
from tests.worker.helpers import PROCESSOR, checkpoints_at_end, clean_env, oracle, projection, until, worker_settings


@pytest.mark.parametrize(
    "by_subject, backend, window",
    [(False, "sqlite", 1.0), (True, "sqlite", 1.0), (False, "postgres", 1.0), (False, "sqlite", 0.0)],
    ids=["spread-sqlite", "partition-key=subject-sqlite", "spread-postgres", "window-0-sqlite"],
)
async def test_two_workers_on_blob_checkpoints_end_with_the_file_ingest_projection(
    devhub, azurite, tmp_path, request, by_subject, backend, window
):
    messages = list(deliver(lifecycle(2500, seed=21), seed=22))
    # A window of 0 applies every arrival at once (more writes, more stale events): the same projection.
    settings = worker_settings(
        devhub,
        tmp_path,
        checkpoint_connection_string=azurite.connection_string,
        checkpoint_container="checkpoints",
        reorder_window=window,
    )
    if backend == "postgres":
        settings = replace(settings, store_url=request.getfixturevalue("postgres_store_url"))
    async with producer_client(settings) as producer:
        # Half before the workers start, half while they run: both backlog and live traffic.
        await publish(producer, messages[: len(messages) // 2], by_subject=by_subject)
        stop = asyncio.Event()
        workers = [asyncio.create_task(run_worker(settings, stop)) for _ in range(2)]
        await publish(producer, messages[len(messages) // 2 :], by_subject=by_subject, rate=2000)

    watcher = BlobCheckpointStore.from_connection_string(azurite.connection_string, "checkpoints")
    async with watcher:
        await until(
            lambda: checkpoints_at_end(watcher, settings, devhub, 4), 90, "checkpoints at the end of every partition"
        )
    stop.set()
    done = await asyncio.gather(*workers)

    expected = await oracle(messages, tmp_path)
    got = await projection(settings.store_url)
    assert got == expected  # whole states: the fold is order-free, whatever the partitioning or timing
    read = sum(w.tally.read for w in done)
    assert read >= len(messages)  # a partition that changed hands may be read twice, never less
    assert all(w.partitions == {} for w in done)  # every partition closed on shutdown


async def test_replay_rebuilds_the_projection_into_a_fresh_store_without_touching_live_checkpoints(devhub, tmp_path):
    from processor.hub.checkpoints import SqliteCheckpointStore

    messages = list(deliver(lifecycle(800, seed=5), seed=6))
    settings = worker_settings(devhub, tmp_path)
    async with producer_client(settings) as producer:
        await publish(producer, messages)
    stop = asyncio.Event()
    live = asyncio.create_task(run_worker(settings, stop))
    checkpoints = SqliteCheckpointStore(settings.checkpoint_url)
    await until(lambda: checkpoints_at_end(checkpoints, settings, devhub, 4), 60, "the live worker to catch up")
    stop.set()
    await live
    before = await checkpoints.list_checkpoints(f"127.0.0.1:{devhub.port}", "events", "$Default")

    rebuilt = tmp_path / "rebuilt.sqlite"
    env = {
        "PROCESSOR_EVENTHUB_CONNECTION_STRING": settings.eventhub_connection_string,
        "PROCESSOR_CHECKPOINT_URL": settings.checkpoint_url,
        "PROCESSOR_REORDER_WINDOW": "0.2",
    }
    code, out, err = await run_processor(
        ["replay", "--from", "earliest", "--store", f"sqlite:///{rebuilt}", "--json"], env, tmp_path
    )
    assert code == 0, err
    # Not a terminal: no progress bar drawn with carriage returns into the log; the summary is one JSON line.
    assert b"\r" not in err
    assert orjson.loads(out.splitlines()[-1])["read"] >= len(messages)
    assert await projection(f"sqlite:///{rebuilt}") == await projection(settings.store_url)
    assert await checkpoints.list_checkpoints(f"127.0.0.1:{devhub.port}", "events", "$Default") == before
    await checkpoints.close()


async def run_processor(argv, env, cwd):
    proc = await asyncio.create_subprocess_exec(
        str(PROCESSOR),
        *argv,
        cwd=cwd,
        env={**clean_env(), **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode, out, err
