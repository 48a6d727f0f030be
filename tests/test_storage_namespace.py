"""Storage accounts with a hierarchical namespace: renames, directories, recursive deletes, in any order."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from processor.config import Settings
from processor.ingest import ingest
from processor.stores.registry import open_store
from processor.stores.sqlite import SqliteStore
from tests.builders import (
    STORAGE,
    body,
    hns_created,
    hns_deleted,
    hns_dir_created,
    hns_dir_deleted,
    hns_renamed,
    storage_subject,
)
from tests.test_order_free import arrival_batches, emptied, ingest_into, two_writers


@pytest.fixture(scope="module")
def postgres_url():
    from tests.stores.conftest import fresh_database

    with fresh_database("processor_namespace") as url:
        yield url


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
    """Blobs and directories that exist (the container's own row, kept for writers' sake, left out)."""
    return {name for name, r in rows.items() if not r.state["deleted"] and r.state.get("kind") != "container"}


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


# A property: random file-system histories, as an account with a hierarchical namespace would report them,
# projected in any arrival order and batching, end as a plain in-memory file system that ran the history.
FILES = ("f0", "d1/f1", "d1/f2", "d2/f1", "d1/s/f1", "d2/s/f1")
DIRS = ("d1", "d2", "d1/s", "d2/s")


class FileSystem:
    """The model: names that exist, each a file (with its length) or a directory."""

    def __init__(self):
        self.live: dict[str, tuple] = {}

    def beneath(self, d: str) -> list[str]:
        return [p for p in self.live if p.startswith(d + "/")]

    def exists_dir(self, d: str) -> bool:
        return self.live.get(d) == ("dir",) or bool(self.beneath(d))


@st.composite
def histories(draw):
    fs = FileSystem()
    events = []
    for i in range(draw(st.integers(1, 14))):
        time, seq = t(i + 1), f"{i + 1:032X}"
        op = draw(st.sampled_from(["create", "create", "delete", "rename", "mkdir", "rmdir", "mvdir"]))
        files = [p for p in FILES if fs.live.get(p, ("dir",))[0] == "file"]
        if op == "create":
            path, length = draw(st.sampled_from(FILES)), draw(st.integers(0, 5))
            fs.live[path] = ("file", length)
            events.append(hns_created(path, time, seq, length=length, etag=f"0x{i}"))
        elif op == "delete" and files:
            path = draw(st.sampled_from(files))
            del fs.live[path]
            events.append(hns_deleted(path, time, seq))
        elif op == "rename" and files:
            src = draw(st.sampled_from(files))
            dst = draw(st.sampled_from([p for p in FILES if p != src]))
            fs.live[dst] = fs.live.pop(src)
            events.append(hns_renamed(src, dst, time, seq))
        elif op == "mkdir":
            d = draw(st.sampled_from(DIRS))
            fs.live[d] = ("dir",)
            events.append(hns_dir_created(d, time, seq))
        elif op == "rmdir":
            d = draw(st.sampled_from(DIRS))
            if fs.exists_dir(d):
                for p in [d, *fs.beneath(d)]:
                    fs.live.pop(p, None)
                events.append(hns_dir_deleted(d, time, seq))
        elif op == "mvdir":
            d, e = draw(st.sampled_from([(a, b) for a in DIRS for b in DIRS if a != b and not b.startswith(a + "/")]))
            if fs.exists_dir(d) and not fs.exists_dir(e) and not d.startswith(e + "/"):
                moving = [d, *fs.beneath(d)] if d in fs.live else fs.beneath(d)
                moved = {e + p[len(d) :]: fs.live.pop(p) for p in moving}
                fs.live.update(moved)
                fs.live.setdefault(e, ("dir",))
                events.append(hns_renamed(d, e, time, seq, directory=True))
    return events, {storage_subject(p): v for p, v in fs.live.items()}


def projected(rows: dict) -> dict[str, tuple]:
    out = {}
    for name, r in rows.items():
        if not r.state["deleted"] and r.state.get("kind") != "container":
            kind = r.state.get("kind")
            out[name] = ("dir",) if kind == "directory" else ("file", r.state.get("content_length"))
    return out


@hsettings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.data())
def test_any_history_in_any_order_and_batching_ends_as_the_file_system(history, data):
    events, expected = history
    lines = [body(e) for e in events]
    disordered = data.draw(st.permutations(lines))
    disordered += data.draw(st.lists(st.sampled_from(lines), max_size=3)) if lines else []
    batch = data.draw(st.integers(1, len(disordered) + 1))
    rows = asyncio.run(export(disordered, batch))
    # Names the history made live only implicitly (a file's parent directory) have no events and no rows.
    assert projected(rows) == {k: v for k, v in expected.items() if k in rows or v != ("dir",)}


def model_of(rows_export: list[dict]) -> dict[str, tuple]:
    out = {}
    for r in rows_export:
        state = r["state"]
        if r["source"] == STORAGE.lower() and not state["deleted"] and state.get("kind") != "container":
            out[r["object"]] = ("dir",) if state.get("kind") == "directory" else ("file", state.get("content_length"))
    return out


def expected_of(expected: dict, rows_export: list[dict]) -> dict:
    names = {r["object"] for r in rows_export}
    return {k: v for k, v in expected.items() if k in names or v != ("dir",)}


@hsettings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.data())
def test_two_writers_on_sqlite_end_as_the_file_system(tmp_path_factory, history, data):
    events, expected = history
    url = f"sqlite:///{tmp_path_factory.mktemp('two')}/p.sqlite"
    disordered = data.draw(st.permutations([body(e) for e in events]))
    rows = asyncio.run(two_writers(url, arrival_batches(data, disordered)))
    assert model_of(rows) == expected_of(expected, rows)


@hsettings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(history=histories(), data=st.data())
def test_two_writers_on_postgres_end_as_the_file_system(postgres_url, history, data):
    events, expected = history
    batches = arrival_batches(data, data.draw(st.permutations([body(e) for e in events])))

    async def run():
        return await two_writers(await emptied(postgres_url), batches)

    rows = asyncio.run(run())
    assert model_of(rows) == expected_of(expected, rows)


@hsettings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(histories(), st.data())
def test_two_file_ingests_at_once_end_as_the_file_system(tmp_path_factory, history, data):
    events, expected = history
    url = f"sqlite:///{tmp_path_factory.mktemp('two-ingests')}/p.sqlite"
    lines = [body(e) for e in events]
    first, second = data.draw(st.permutations(lines)), data.draw(st.permutations(lines))

    async def run():
        stores = [open_store(url), open_store(url)]
        for store in stores:
            await store.open()
        try:
            small = replace(Settings(), ingest_cache_objects=2)
            await asyncio.gather(
                ingest_into(stores[0], first, small, fold_batch=1), ingest_into(stores[1], second, small, fold_batch=1)
            )
            return [r.to_json() async for r in stores[0].export()]
        finally:
            for store in stores:
                await store.close()

    rows = asyncio.run(run())
    assert model_of(rows) == expected_of(expected, rows)


# The race itself, made to happen: writer A has read the rows and folded a creation beneath `d/` when writer B
# folds and commits `d/`'s recursive delete (B found nothing beneath `d/` in the store); then A commits. Only
# the container's row, which both write, tells A that it folded on rows B has since changed.
RACE_FIRST = hns_created("other", t(9), "09", id="zzzz-first")  # the container's latest event, by time and id
RACE_A = hns_created("d/x", t(1), "01", id="a-create")
RACE_B = hns_dir_deleted("d", t(2), "02", id="b-delete")


class Gate:
    """A's commit waits for B's whole apply; B starts reading only once A has folded (reached its commit)."""

    def __init__(self):
        self.a_folded, self.b_done = asyncio.Event(), asyncio.Event()

    def hold_commit(self, store):
        commit = store.commit

        async def gated(writes, dead):
            self.a_folded.set()
            await self.b_done.wait()
            return await commit(writes, dead)

        store.commit = gated

    def hold_first_read(self, store):
        for name in ("load", "query"):
            method = getattr(store, name)

            async def gated(*args, _method=method, **kwargs):
                await self.a_folded.wait()
                return await _method(*args, **kwargs)

            setattr(store, name, gated)


async def _raced(url: str, apply_a, apply_b) -> dict:
    first = open_store(url)
    await first.open()
    await ingest_into(first, [body(RACE_FIRST)])
    await first.close()
    stores = [open_store(url), open_store(url)]
    for store in stores:
        await store.open()
    gate = Gate()
    gate.hold_commit(stores[0])
    gate.hold_first_read(stores[1])

    async def b():
        await apply_b(stores[1])
        gate.b_done.set()

    try:
        await asyncio.gather(apply_a(stores[0]), b())
        return {r.object: r.state async for r in stores[1].export()}
    finally:
        for store in stores:
            await store.close()


def _projector_apply(event):
    async def apply(store):
        from processor.admission import make_intake
        from processor.core.model import Tally
        from processor.projector import Projector

        admitted = make_intake(Settings()).admit(body(event), Tally())[0]
        await Projector(store, Tally()).apply({ev.key: [ev] for ev in admitted}, [])

    return apply


def _ingest_apply(event):
    async def apply(store):
        await ingest_into(store, [body(event)], fold_batch=1)

    return apply


@pytest.mark.parametrize("writer", [_projector_apply, _ingest_apply], ids=["projectors", "file-ingests"])
def test_a_creation_racing_a_recursive_delete_of_its_directory_ends_deleted(tmp_path, writer):
    rows = asyncio.run(_raced(f"sqlite:///{tmp_path}/race.sqlite", writer(RACE_A), writer(RACE_B)))
    assert rows[storage_subject("d/x")]["deleted"] is True
    assert rows[storage_subject("d/x")]["deleted_by"] == storage_subject("d")


# A loser's partial commit, then its redo with nothing left to write. Writer L folds `d/`'s recursive delete;
# meanwhile writer W commits a batch beneath the container (its row's revision moves on), so L's commit fails
# on the container's row, but L's other rows (`d/` deleted) land: the stores commit every write whose own
# compare-and-set holds. W had already read the rows for its next batch, a creation of `d/x` (before `d/`'s
# delete in time), from before L's partial commit: `d/` not deleted, nothing to pull. L's redo finds its rows
# already written and nothing beneath `d/` yet (W has not committed `d/x`). Unless that redo writes the
# container's row anyway, it commits nothing, and W's commit of `d/x` finds the container as it read it: `d/x`
# ends live under a recursively deleted `d/`.
PARTIAL_SETUP = hns_dir_created("other", t(9), "09", id="zzzz-first")  # hierarchical; the container's latest
PARTIAL_W1 = hns_created("e/y", t(3), "03", id="w-first")
PARTIAL_W2 = hns_created("d/x", t(1), "01", id="w-second")
PARTIAL_L = hns_dir_deleted("d", t(2), "02", id="l-delete")


def test_a_redo_with_nothing_left_to_write_still_writes_its_container(tmp_path):
    url = f"sqlite:///{tmp_path}/partial.sqlite"

    async def run() -> dict:
        first = open_store(url)
        await first.open()
        await ingest_into(first, [body(PARTIAL_SETUP)])
        await first.close()
        w, ell = open_store(url), open_store(url)
        for store in (w, ell):
            await store.open()
        l_at_commit, w_at_second_commit, l_done = asyncio.Event(), asyncio.Event(), asyncio.Event()
        w_commit, l_commit = w.commit, ell.commit
        w_commits: list[int] = []
        l_commits: list[int] = []

        async def w_gated(writes, dead):
            w_commits.append(len(writes))
            if len(w_commits) == 1:
                await l_at_commit.wait()  # W's first batch commits after L has read and folded
            elif len(w_commits) == 2:
                w_at_second_commit.set()  # W read and folded its second batch before L's first commit
                await l_done.wait()  # and commits after L's whole apply
            return await w_commit(writes, dead)

        async def l_gated(writes, dead):
            l_commits.append(len(writes))
            if len(l_commits) == 1:
                l_at_commit.set()
                await w_at_second_commit.wait()
            return await l_commit(writes, dead)

        w.commit, ell.commit = w_gated, l_gated

        async def writer_w():
            await _projector_apply(PARTIAL_W1)(w)
            await _projector_apply(PARTIAL_W2)(w)

        async def writer_l():
            await _projector_apply(PARTIAL_L)(ell)
            l_done.set()

        try:
            await asyncio.wait_for(asyncio.gather(writer_w(), writer_l()), 30)
            assert len(l_commits) >= 2, "L's first commit was meant to fail on the container's row"
            return {r.object: r.state async for r in ell.export()}
        finally:
            for store in (w, ell):
                await store.close()

    rows = asyncio.run(run())
    assert rows[storage_subject("d")]["deleted"] is True
    assert rows[storage_subject("d/x")]["deleted"] is True
    assert rows[storage_subject("d/x")]["deleted_by"] == storage_subject("d")
