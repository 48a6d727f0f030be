"""The feeder process's contract with the worker: its settings, its frames, and how it stops."""

import asyncio
import os
import struct
import sys
from dataclasses import replace

import msgspec

from processor.config import Settings
from processor.hub.checkpoints import SqliteCheckpointStore
from processor.hub.clients import namespace
from processor.hub.wire import ENV, settings_from_env, settings_to_env
from tests.worker.helpers import until, worker_settings


def test_settings_survive_the_trip_to_the_feeder():
    settings = replace(
        Settings(),
        allowed_sources=("/subscriptions/a",),
        reorder_window=0.5,
        catalog_types=(
            {"types": ["X.Y"], "subjects": ["a/{B}"], "object": "b/{B}", "sequencer": "time", "reducer": "merge"},
        ),
    )
    assert settings_from_env(settings_to_env(settings, "cg")) == (settings, "cg", False)
    assert settings_from_env(settings_to_env(settings, "cg", diagnostic_ids=True))[2] is True


async def start_feeder(settings):
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "processor.hub.feeder",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, ENV: settings_to_env(settings, "$Default")},
        start_new_session=True,
    )


async def read_frame(proc):
    size = struct.unpack(">I", await asyncio.wait_for(proc.stdout.readexactly(4), 30))[0]
    return msgspec.msgpack.decode(await proc.stdout.readexactly(size))


async def owners(settings):
    store = SqliteCheckpointStore(settings.checkpoint_url)
    try:
        return {
            o["partition_id"]: o["owner_id"]
            for o in await store.list_ownership(namespace(settings), "events", "$Default")
        }
    finally:
        await store.close()


async def test_stop_releases_the_partitions_and_exits_cleanly(devhub, tmp_path):
    settings = worker_settings(devhub, tmp_path)
    proc = await start_feeder(settings)
    opened = set()
    while len(opened) < 4:
        frame = await read_frame(proc)
        if frame[0] == "open":
            opened.add(frame[1])
    proc.stdin.write(b"stop\n")
    await proc.stdin.drain()
    closes = []
    while True:
        try:
            frame = await read_frame(proc)
        except asyncio.IncompleteReadError:
            break
        if frame[0] == "close":
            closes.append(frame)
    assert await asyncio.wait_for(proc.wait(), 30) == 0
    assert sorted(f[1] for f in closes) == ["0", "1", "2", "3"] and not any(f[2] for f in closes)  # not "lost"
    assert set((await owners(settings)).values()) == {""}  # released for the next replica


async def test_when_the_worker_dies_the_feeder_exits_at_once_releasing_nothing(devhub, tmp_path):
    settings = worker_settings(devhub, tmp_path)
    proc = await start_feeder(settings)
    await until(lambda: _owned(settings), 30, "the feeder to claim partitions")
    proc.stdin.close()  # what the worker's death looks like from here
    assert await asyncio.wait_for(proc.wait(), 10) == 3
    assert all((await owners(settings)).values())  # still owned: a crash, not a hand-over


async def _owned(settings) -> bool:
    try:
        return len(await owners(settings)) == 4
    except Exception:  # the checkpoint file is created by the feeder; not there yet
        return False
