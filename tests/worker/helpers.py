"""What the worker tests share: settings for the local hub, the file-ingest oracle, waiting on checkpoints."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from processor.config import Settings
from processor.ingest import ingest
from processor.sim.traffic import Message
from processor.stores.registry import open_store
from processor.stores.sqlite import SqliteStore

HUB = "events"
PROCESSOR = Path(sys.executable).with_name("processor")


def clean_env() -> dict[str, str]:
    """This process's environment without PROCESSOR_* settings, so a test says every setting it relies on."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PROCESSOR_")}


def worker_settings(hub: Any, folder: Path, **overrides: Any) -> Settings:
    base = dict(
        eventhub_connection_string=hub.connection_string(HUB),
        store_url=f"sqlite:///{folder}/projection.sqlite",
        checkpoint_url=f"sqlite:///{folder}/checkpoints.sqlite",
        reorder_window=0.3,
        load_balancing_interval=0.5,
        ownership_expiration=3.0,
        checkpoint_every_seconds=0.2,
        checkpoint_every_events=50,
        shutdown_timeout=10.0,
    )
    base.update(overrides)
    return replace(Settings(), **base)


async def oracle(messages: list[Message], folder: Path) -> dict[tuple[str, str], dict]:
    """What file ingest of the same messages projects: the expected end state."""
    store = SqliteStore(f"sqlite:///{folder}/oracle.sqlite")
    await store.open()
    try:
        await ingest([(f"m{i}", m.body) for i, m in enumerate(messages)], Settings(), store)
        return {r.key: row_dict(r) async for r in store.export()}
    finally:
        await store.close()


def row_dict(r: Any) -> dict:
    return {
        "event_id": r.event_id,
        "sequencer": r.sequencer,
        "etag": r.etag,
        "event_type": r.event_type,
        "state": r.state,
    }


async def projection(store_url: str) -> dict[tuple[str, str], dict]:
    store = open_store(store_url)
    await store.open()
    try:
        return {r.key: row_dict(r) async for r in store.export()}
    finally:
        await store.close()


async def until(condition: Callable[[], Awaitable[bool] | bool], timeout: float, what: str, every: float = 0.1) -> None:
    """Poll `condition` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(every)


async def checkpoints_at_end(
    checkpoint_store: Any, settings: Settings, hub: Any, partitions: int, group: str = "$Default"
) -> bool:
    """True when every non-empty partition's checkpoint names its last enqueued event."""
    from processor.hub.clients import namespace

    marks = {
        c["partition_id"]: c["sequence_number"]
        for c in await checkpoint_store.list_checkpoints(namespace(settings), HUB, group)
    }
    for pid in map(str, range(partitions)):
        info = hub.partition_info(HUB, pid)
        if not info["is_empty"] and marks.get(pid) != info["last_enqueued_sequence_number"]:
            return False
    return True
