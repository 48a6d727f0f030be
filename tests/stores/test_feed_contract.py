"""The change feed's contract: every test runs against SQLite and PostgreSQL (the `store` fixture of
tests/stores/conftest.py) and must pass the same way on both."""

from __future__ import annotations

import asyncio
import sqlite3

import asyncpg
import pytest

from processor.stores import postgres_feed, sqlite_feed
from processor.stores.base import Query
from processor.stores.feed import ChangeQuery, FeedAhead, FeedExpired, FeedRetention
from tests.stores.test_contract import SRC, SRC2, all_rows, cas, insert, row


async def feed(store, after: int = 0, limit: int = 1000, **filters) -> list:
    return (await store.changes(ChangeQuery(after=after, limit=limit, **filters))).changes


def summary(changes) -> list[tuple]:
    return [(c.position, c.object, c.event_id, c.revision) for c in changes]


async def test_every_written_row_is_one_change_at_the_next_position_and_nothing_else_is(store):
    a, b = row("runs/a", "0001", "e1", etag="0x1", state={"status": "Queued"}), row("runs/b", "0001", "e1")
    assert await store.commit([insert(b), insert(a)], []) == set()
    page = await store.changes(ChangeQuery())
    assert (page.head, page.next, page.oldest) == (2, 2, 1)
    # One commit's changes are consecutive, in key order.
    assert summary(page.changes) == [(1, "runs/a", "e1", 1), (2, "runs/b", "e1", 1)]
    first = page.changes[0]
    assert (first.source, first.event_type, first.sequencer, first.etag, first.state) == (
        SRC,
        "T.Changed",
        "0001",
        "0x1",
        {"status": "Queued"},
    )
    assert first.updated_at == a.updated_at and first.committed_at.endswith("Z")
    # A conflict, the same insert again and a backwards write change no row: no change either.
    assert await store.commit([cas(row("runs/a", "0002", "e2"), 0)], []) == {a.key}
    assert await store.commit([insert(a)], []) == set()
    assert await store.commit([cas(row("runs/b", "0000", "e0"), 1)], []) == {b.key}
    assert await store.commit([], []) == set()
    newer = row("runs/a", "0002", "e2", state={"status": "Running"})
    assert await store.commit([cas(newer, 1), cas(row("runs/b", "0000", "e9"), 1)], []) == {b.key}
    changes = await feed(store)
    assert summary(changes) == [(1, "runs/a", "e1", 1), (2, "runs/b", "e1", 1), (3, "runs/a", "e2", 2)]
    assert changes[-1].state == {"status": "Running"}
    assert changes[-1].to_json()["position"] == 3


async def test_pages_resume_where_the_last_stopped_and_filters_still_advance_the_position(store):
    rows = [
        row("runs/r1", etype="ML.RunStatusChanged", state={"status": "Failed"}),
        row("models/m1", etype="ML.ModelRegistered", state={"status": "Ready"}),
        row("runs/r2", etype="ML.RunStatusChanged", state={"status": "Completed"}),
        row("runs/r1", source=SRC2, etype="ML.RunStatusChanged", state={"status": "Failed"}),
        row("runs%/x", etype="ML.RunStatusChanged", state={"status": "Failed"}),
    ]
    for r in rows:  # one commit each: positions in this order
        await store.commit([insert(r)], [])
    walked, after = [], 0
    while True:
        page = await store.changes(ChangeQuery(after=after, limit=2))
        walked += [c.position for c in page.changes]
        assert page.head == 5
        if page.next == after:
            break
        after = page.next
    assert walked == [1, 2, 3, 4, 5]

    def objects(changes):
        return [(c.source == SRC2, c.object) for c in changes]

    assert objects(await feed(store, source=SRC2.upper())) == [(True, "runs/r1")]
    assert objects(await feed(store, prefix="runs/")) == [(False, "runs/r1"), (False, "runs/r2"), (True, "runs/r1")]
    assert objects(await feed(store, prefix="runs%")) == [(False, "runs%/x")]
    assert objects(await feed(store, event_type="ML.ModelRegistered")) == [(False, "models/m1")]
    failed = ChangeQuery(source=SRC, state_equals=(("status", "Failed"),), limit=1)
    page = await store.changes(failed)
    assert objects(page.changes) == [(False, "runs/r1")] and page.next == 1  # full: the last one returned
    page = await store.changes(ChangeQuery(after=1, source=SRC, state_equals=(("status", "Failed"),), limit=5))
    assert objects(page.changes) == [(False, "runs%/x")] and page.next == 5  # not full: looked up to the head
    page = await store.changes(ChangeQuery(after=2, event_type="nothing"))
    assert page.changes == [] and page.next == 5
    with pytest.raises(ValueError):
        await store.changes(ChangeQuery(state_equals=(("a') OR 1=1 --", "x"),)))


async def test_a_position_beyond_the_newest_is_refused(store):
    await store.commit([insert(row("a"))], [])
    assert await feed(store, after=1) == []
    with pytest.raises(FeedAhead) as caught:
        await store.changes(ChangeQuery(after=2))
    assert caught.value.head == 1


async def test_a_transaction_that_rolls_back_leaves_no_gap(backend, store):
    await store.commit([insert(row("a"))], [])
    # A writer that wrote a row (its trigger took a position) and then rolled back.
    statement = (
        "INSERT INTO projection (source, object, event_type, event_id, sequencer, state, updated_at) "
        "VALUES ('s', 'ghost', 'T', 'e', '1', '{}', 't')"
    )
    if backend.kind == "sqlite":
        db = sqlite3.connect(backend.path, isolation_level=None)
        db.execute("BEGIN IMMEDIATE")
        db.execute(statement)
        db.execute("ROLLBACK")
        db.close()
    else:
        conn = await asyncpg.connect(backend.url)
        try:
            tx = conn.transaction()
            await tx.start()
            await conn.execute(statement)
            await tx.rollback()
        finally:
            await conn.close()
    await store.commit([insert(row("b"))], [])
    assert summary(await feed(store)) == [(1, "a", "e1", 1), (2, "b", "e1", 1)]


def small_batches(monkeypatch, size: int) -> None:
    for module in (sqlite_feed, postgres_feed):
        monkeypatch.setattr(module, "PRUNE_BATCH", size)


async def test_retention_by_count_prunes_the_oldest_and_older_positions_are_refused_with_the_oldest(store, monkeypatch):
    for i in range(10):
        await store.commit([insert(row(f"o{i}"))], [])
    assert await store.prune_changes(FeedRetention(max_changes=4, max_age=0)) == (6, False)
    with pytest.raises(FeedExpired) as caught:
        await store.changes(ChangeQuery(after=0))
    assert caught.value.oldest == 7 and "7" in str(caught.value)
    with pytest.raises(FeedExpired):
        await store.changes(ChangeQuery(after=5))
    page = await store.changes(ChangeQuery(after=6))
    assert [c.position for c in page.changes] == [7, 8, 9, 10] and page.oldest == 7
    # At most one batch per prune; the rest next time.
    small_batches(monkeypatch, 2)
    assert await store.prune_changes(FeedRetention(max_changes=1, max_age=0)) == (8, True)
    assert await store.prune_changes(FeedRetention(max_changes=1, max_age=0)) == (9, False)
    assert [c.position for c in await feed(store, after=9)] == [10]
    assert await store.prune_changes(FeedRetention(max_changes=1, max_age=0)) == (9, False)
    # Unlimited prunes nothing; the rows themselves are never touched.
    assert await store.prune_changes(FeedRetention(max_changes=0, max_age=0)) == (9, False)
    assert len(await all_rows(store)) == 10


async def test_retention_by_age_prunes_only_changes_older_than_it(backend, store):
    for i in range(6):
        await store.commit([insert(row(f"o{i}"))], [])
    await backend.sql("UPDATE changes SET committed_at = '2020-01-01T00:00:00.000Z' WHERE position <= 3")
    assert await store.prune_changes(FeedRetention(max_changes=0, max_age=3600)) == (3, False)
    assert [c.position for c in await feed(store, after=3)] == [4, 5, 6]
    # Pruning everything keeps the positions: the next change is still the next number.
    await backend.sql("UPDATE changes SET committed_at = '2020-01-01T00:00:00.000Z'")
    assert await store.prune_changes(FeedRetention(max_changes=0, max_age=3600)) == (6, False)
    page = await store.changes(ChangeQuery(after=6))
    assert (page.changes, page.head, page.oldest) == ([], 6, 7)
    await store.commit([insert(row("later"))], [])
    assert summary(await feed(store, after=6)) == [(7, "later", "e1", 1)]


async def test_writers_prune_after_their_commits_by_the_stores_retention(store):
    store.retention = FeedRetention(max_changes=2, max_age=0)
    await store.commit([insert(row(f"o{i}")) for i in range(5)], [])
    page = await store.changes(ChangeQuery(after=3))
    assert (page.oldest, [c.object for c in page.changes]) == (4, ["o3", "o4"])


async def test_a_store_from_before_the_feed_gets_its_rows_as_the_first_changes(backend, store):
    rows = [row("runs/b", "0002", "e2"), row("runs/a", "0001", "e1", source=SRC2), row("runs/a")]
    await store.commit([insert(r) for r in rows], [])
    await store.close()
    # Back to version 2: no feed.
    for statement in [
        "DROP TRIGGER feed_on_insert" + (" ON projection" if backend.kind == "postgres" else ""),
        "DROP TRIGGER feed_on_update" + (" ON projection" if backend.kind == "postgres" else ""),
        "DROP TABLE changes",
        *(["DROP TABLE feed"] if backend.kind == "postgres" else []),
        "UPDATE meta SET value = '2' WHERE key = 'schema_version'",
    ]:
        await backend.sql(statement)
    again = backend.new_store()
    await again.open()
    try:
        assert [(c.position, c.source, c.object) for c in await feed(again)] == [
            (1, SRC, "runs/a"),
            (2, SRC, "runs/b"),
            (3, SRC2, "runs/a"),
        ]
        await again.commit([cas(row("runs/a", "0003", "e3"), 1)], [])
        assert summary(await feed(again, after=3)) == [(4, "runs/a", "e3", 2)]
    finally:
        await again.close()
    assert await backend.sql("SELECT value FROM meta WHERE key = 'schema_version'") == [("3",)]


async def test_a_feed_cursor_is_saved_per_name_and_never_moves_back(backend, store):
    assert await store.feed_cursor("hook") is None
    await store.save_feed_cursor("hook", 12)
    await store.save_feed_cursor("other", 3)
    await store.save_feed_cursor("hook", 9)  # a slower replica
    assert (await store.feed_cursor("hook"), await store.feed_cursor("other")) == (12, 3)
    await store.save_feed_cursor("hook", 100)
    again = backend.new_store()
    await again.open()
    try:
        assert await again.feed_cursor("hook") == 100
    finally:
        await again.close()


async def test_a_waiter_wakes_on_another_replicas_commit(backend, store):
    other = backend.new_store()
    await other.open()
    try:
        head = (await store.changes(ChangeQuery())).head
        if backend.kind == "postgres":
            store._watch._poll = 3600.0  # only the notification can wake it within the test's time
        waiting = asyncio.ensure_future(store.wait_for_changes(head, timeout=60))
        await other.commit([insert(row("woken"))], [])
        assert await waiting == head + 1
        # Already past: at once, without waiting.
        assert await store.wait_for_changes(head, timeout=60) == head + 1
    finally:
        await other.close()


async def test_replicas_committing_at_once_give_one_gap_free_order_that_a_reader_never_sees_out_of_order(
    backend, store
):
    objects = [f"shared/{i}" for i in range(8)]
    replicas = [backend.new_store() for _ in range(4)]
    for r in replicas:
        await r.open()
    done = asyncio.Event()

    async def writer(n: int, replica) -> int:
        written = 0
        for step in range(60):
            key_a, key_b = objects[(n + step) % 8], f"own/{n}/{step % 5}"
            while True:
                current = await replica.load([(SRC, key_a), (SRC, key_b)])
                writes = []
                for key in (key_a, key_b):
                    old = current.get((SRC, key))
                    seq = f"{(int(old.sequencer) + 1) if old else 1:06d}"
                    new = row(key, seq, f"w{n}-{step}", state={"by": n, "step": step})
                    writes.append(cas(new, old.revision) if old else insert(new))
                failed = await replica.commit(writes, [])
                written += len(writes) - len(failed)
                if not failed:
                    break
                # the rest may have gone through: the next round folds from what is there now
        return written

    async def reader() -> list:
        seen, after = [], 0
        while True:
            last = done.is_set()
            page = await store.changes(ChangeQuery(after=after, limit=7))
            positions = [c.position for c in page.changes]
            # Gap-free and in commit order: what follows `after` is always after+1, after+2, ...
            assert positions == list(range(after + 1, after + 1 + len(positions))), (after, positions)
            seen += page.changes
            after = page.next
            if last and after == page.head:
                return seen
            await asyncio.sleep(0)

    reading = asyncio.ensure_future(reader())
    try:
        written = await asyncio.gather(*(writer(n, r) for n, r in enumerate(replicas)))
    finally:
        done.set()
        for r in replicas:
            await r.close()
    seen = await reading
    assert len(seen) == sum(written)
    revisions: dict = {}
    view: dict = {}
    for c in seen:
        key = (c.source, c.object)
        assert c.revision == revisions.get(key, 0) + 1, f"{key}: revision {c.revision} after {revisions.get(key)}"
        revisions[key] = c.revision
        view[key] = (c.event_id, c.sequencer, c.state, c.revision)
    final = {r.key: (r.event_id, r.sequencer, r.state, r.revision) for r in await all_rows(store)}
    assert view == final
    assert len(await store.query(Query(limit=1000))) == len(final)
