"""Replicas racing on one store: 8 asyncio tasks (each its own store and connections) and 2 processes apply
overlapping parts of the same events; the result must equal ingesting the stream once, and a monitor polling
throughout must never see an object's (sequencer, event_id) go down."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import orjson

from processor.config import Settings
from processor.core.model import ObjectKey
from processor.ingest import ingest
from processor.namespace_fold import container_key
from processor.stores.sqlite import SqliteStore
from tests.stores.race import Stream, write

EVENTS = 3000
SEED = 3
TASKS = 8
PROCESSES = 2
ROOT = Path(__file__).resolve().parents[2]


def comparable(rows) -> list[tuple]:
    return [(r.source, r.object, r.event_type, r.event_id, r.sequencer, r.etag, r.state) for r in rows]


def comparable_dead(listed) -> list[tuple]:
    return sorted((d["origin"], d["reason"], d["event_id"], d["body"], d["body_size"]) for d in listed)


async def oracle(stream: Stream, folder: Path) -> tuple[list[tuple], list[tuple]]:
    store = SqliteStore(f"sqlite:///{folder}/oracle.sqlite")
    await store.open()
    try:
        await ingest(stream.lines(), Settings(), store)
        return comparable([r async for r in store.export()]), comparable_dead(await store.dead_letters(limit=10_000))
    finally:
        await store.close()


async def monitor(store, keys: list[ObjectKey], done: asyncio.Event) -> tuple[int, int]:
    """Polls every object in one read until `done`; returns (polls, changes seen between polls)."""
    seen: dict[ObjectKey, tuple[str, str]] = {}
    polls = changes = 0
    while True:
        last = done.is_set()
        rows = await store.load(keys)
        polls += 1
        vanished = set(seen) - set(rows)
        assert not vanished, f"rows disappeared: {sorted(vanished)[:5]}"
        for key, row in rows.items():
            before = seen.get(key)
            assert before is None or row.order >= before, f"{key} moved backwards: {before} -> {row.order}"
            if before != row.order:
                changes += before is not None
                seen[key] = row.order
        if last:
            return polls, changes


async def start_process(url: str, writer: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.stores.race_writer",
        url,
        str(EVENTS),
        str(SEED),
        str(writer),
        str(TASKS + PROCESSES),
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    line = await proc.stdout.readline()
    assert line == b"ready\n", f"race writer {writer} did not start: {line!r} (exit {await proc.wait()})"
    return proc


async def finish_process(proc: asyncio.subprocess.Process) -> dict:
    proc.stdin.write(b"go\n")
    await proc.stdin.drain()
    out, _ = await proc.communicate()
    assert proc.returncode == 0, f"race writer failed with exit {proc.returncode}"
    return orjson.loads(out.splitlines()[-1])


async def test_replicas_racing_end_where_one_ingest_ends_and_never_go_backwards(backend, tmp_path):
    stream = Stream(EVENTS, SEED)
    expected_rows, expected_dead = await oracle(stream, tmp_path)
    # A row per object, and more: each storage container, each rename's or move's destination.
    containers = {c for key in stream.events if (c := container_key(key)) is not None}
    assert {row[:2] for row in expected_rows} >= set(stream.events) | containers
    assert len(expected_dead) == len(stream.dead) > 0

    writers = TASKS + PROCESSES
    stores = [backend.new_store() for _ in range(TASKS + 1)]
    procs = []
    try:
        for s in stores:
            await s.open()
        procs = [await start_process(backend.url, TASKS + i) for i in range(PROCESSES)]
        plans = [stream.plan(SEED, w, writers) for w in range(TASKS)]
        done = asyncio.Event()
        watcher = asyncio.create_task(monitor(stores[-1], list(stream.events), done))
        try:
            results = await asyncio.gather(
                *(finish_process(p) for p in procs), *(write(s, plan) for s, plan in zip(stores, plans))
            )
        finally:
            done.set()
            polls, changes = await watcher
        final = comparable([r async for r in stores[0].export()])
        dead = comparable_dead(await stores[0].dead_letters(limit=10_000))
        counts = await stores[0].counts()
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                await p.wait()
        for s in stores:
            await s.close()

    assert final == expected_rows
    assert dead == expected_dead
    assert counts == {"objects": len(expected_rows), "dead_letters": len(expected_dead)}
    # The race really happened: commits lost compare-and-sets and were redone; the monitor saw rows move.
    conflicts = sum(r["conflicts"] for r in results)
    assert conflicts > 0, results
    assert changes > 0 and polls > 2, (polls, changes)
    print(f"\n{backend.kind}: {conflicts} conflicts redone, monitor {polls} polls saw {changes} changes")
