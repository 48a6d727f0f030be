"""Storage accounts with a hierarchical namespace: renames, directories, recursive deletes, in any order."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from processor.config import Settings
from processor.ingest import ingest
from processor.stores.sqlite import SqliteStore
from tests.builders import (
    STORAGE,
    body,
    hns_created,
    hns_dir_deleted,
    hns_renamed,
    storage_subject,
)


def t(n: int) -> str:
    return f"2026-03-01T10:00:{n:02d}.0000000Z"


async def export(lines: list[bytes], fold_batch: int = 20000, store_url: str = "sqlite:///:memory:") -> dict:
    store = SqliteStore(store_url)
    await store.open()
    try:
        await ingest([(f"l{i}", b) for i, b in enumerate(lines)], Settings(), store, fold_batch=fold_batch)
        return {r.object: r for r in [r async for r in store.export()] if r.source == STORAGE.lower()}
    finally:
        await store.close()


def live(rows: dict) -> set[str]:
    return {name for name, r in rows.items() if not r.state["deleted"]}


A, B, C, DIR = (storage_subject(p) for p in ("dir/a.txt", "dir/b.txt", "dir/c.txt", "dir"))
THE_SEQUENCE = [
    body(hns_created("dir/a.txt", t(1), "01", length=111, etag="0xA")),
    body(hns_renamed("dir/a.txt", "dir/b.txt", t(2), "02")),
    body(hns_created("dir/c.txt", t(3), "03", length=333)),
    body(hns_dir_deleted("dir", t(4), "04")),
]


@pytest.mark.parametrize("fold_batch", [1, 20000])
def test_rename_then_recursive_delete_ends_the_same_in_every_arrival_order(fold_batch):
    seen = []
    for order in itertools.permutations(THE_SEQUENCE):
        rows = asyncio.run(export(list(order), fold_batch))
        assert live(rows) == set(), order
        assert B in rows and rows[B].state["renamed_from"] == A
        # b.txt carries what a.txt knew, whichever arrived first
        assert (rows[B].state["content_length"], rows[B].state["etag"]) == (111, "0xA")
        assert rows[A].state["deleted"] and rows[C].state["deleted_by"] == DIR
        seen.append({k: (r.state, r.event_id) for k, r in rows.items()})
    assert all(s == seen[0] for s in seen)


def test_a_rename_alone_moves_the_blob():
    rows = asyncio.run(export(THE_SEQUENCE[:3][::-1]))
    assert live(rows) == {B, C}
    assert rows[A].state["deleted"] and rows[A].state["renamed_to"] == B
