"""Parallel ingest (several fold processes, one store) exports what one process does, on SQLite and
PostgreSQL: with the route that keeps an object in one process, and with a route that scatters every object
and every container's namespace over the processes (then the stores' compare-and-set settles them)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import replace
from itertools import count

import pytest

from processor.config import Settings, settings_to_json
from processor.ingest import as_batches
from processor.ingest_shards import ingest_sharded
from processor.ingest_wire import ENV, Messages, encode_frame
from processor.stores.base import StoreError
from processor.stores.registry import open_store
from tests.stores.race import Stream
from tests.stores.test_race import comparable, comparable_dead, oracle

EVENTS = 2500
SEED = 11


async def parallel_export(backend, stream: Stream, processes: int, route_of=None):
    settings = replace(Settings(), store_url=backend.url, ingest_processes=processes)
    store = open_store(backend.url)
    await store.open()
    try:
        messages = ((label, body, None) for label, body in stream.lines())
        kwargs = {"route_of": route_of} if route_of else {}
        tally = await ingest_sharded(as_batches(messages), settings, store, **kwargs)
        rows = comparable([r async for r in store.export()])
        return rows, comparable_dead(await store.dead_letters(limit=10_000)), tally
    finally:
        await store.close()


@pytest.mark.parametrize("processes", [2, 3])
async def test_parallel_ingest_exports_like_one_process(backend, tmp_path, processes):
    stream = Stream(EVENTS, SEED)
    rows, dead, tally = await parallel_export(backend, stream, processes)
    assert (rows, dead) == await oracle(stream, tmp_path)
    assert tally.read == len(stream.lines()) + sum(b.count(b"},{") for b in stream.bodies)  # every event counted
    assert tally.count("dead_lettered") == len(stream.dead)


async def test_any_split_of_objects_and_namespaces_exports_like_one_process(backend, tmp_path):
    turn = count()
    rows, dead, _ = await parallel_export(backend, Stream(EVENTS, SEED + 1), 2, lambda body, n: next(turn) % n)
    assert (rows, dead) == await oracle(Stream(EVENTS, SEED + 1), tmp_path)


async def test_a_failing_fold_process_is_named_with_its_reason(tmp_path):
    url = f"sqlite:///{tmp_path}/p.sqlite"
    store = open_store(url)
    await store.open()
    try:
        import sqlite3

        db = sqlite3.connect(tmp_path / "p.sqlite")
        db.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
        db.commit()
        db.close()
        stream = Stream(200, SEED)
        messages = ((label, body, None) for label, body in stream.lines())
        settings = replace(Settings(), store_url=url, ingest_processes=2)
        with pytest.raises(StoreError, match=r"fold process \d exited with code 1: .*newer than this processor"):
            await ingest_sharded(as_batches(messages), settings, store)
    finally:
        await store.close()


async def test_a_fold_process_whose_parent_is_gone_commits_nothing(tmp_path):
    url = f"sqlite:///{tmp_path}/p.sqlite"
    env = {**os.environ, ENV: settings_to_json(replace(Settings(), store_url=url))}
    frame = encode_frame(Messages([(label, body, None, None) for label, body in Stream(200, SEED).lines()]))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "processor.ingest_process", stdin=subprocess.PIPE, env=env
    )
    assert proc.stdin is not None
    proc.stdin.write(frame)
    await proc.stdin.drain()
    proc.stdin.close()  # no Done: as when the parent is killed
    assert await proc.wait() == 3
    store = open_store(url)
    await store.open()
    try:
        assert (await store.counts())["objects"] == 0
    finally:
        await store.close()
