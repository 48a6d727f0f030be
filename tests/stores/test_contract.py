"""The store contract: every test runs against SQLite and PostgreSQL and must pass the same way on both."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from processor.core.model import DeadLetter, Row, Write
from processor.stores.base import Query, StoreError
from processor.stores.registry import open_store

SRC = "/subscriptions/s/resourcegroups/rg/providers/microsoft.machinelearningservices/workspaces/ws"
SRC2 = "/subscriptions/s/resourcegroups/rg/providers/microsoft.storage/storageaccounts/acct"


def row(
    obj: str,
    seq: str = "0001",
    eid: str = "e1",
    source: str = SRC,
    etype: str = "T.Changed",
    etag: str | None = None,
    state: dict | None = None,
    updated_at: str = "2026-01-01T00:00:00.000000Z",
    provenance: dict | None = None,
    revision: int = 1,
) -> Row:
    return Row(
        source,
        obj,
        etype,
        eid,
        seq,
        etag,
        state if state is not None else {"v": seq},
        updated_at,
        provenance or {},
        revision,
    )


def insert(r: Row) -> Write:
    return Write(replace(r, revision=1), None)


def cas(r: Row, expected: int) -> Write:
    """A write over the row at revision `expected`."""
    return Write(replace(r, revision=expected + 1), expected)


def at(r: Row, revision: int) -> Row:
    return replace(r, revision=revision)


async def stored(store, r: Row) -> Row | None:
    return (await store.load([r.key])).get(r.key)


async def all_rows(store) -> list[Row]:
    return [r async for r in store.export()]


def dead(
    fp: str,
    body: bytes = b'{"bad": true}',
    reason: str = "no subject",
    event_id: str | None = None,
    size: int | None = None,
) -> DeadLetter:
    return DeadLetter(reason, body, size if size is not None else len(body), f"origin-{fp}", event_id, fp)


# -- writes ---------------------------------------------------------------------------------------------


async def test_insert_then_load_returns_every_field(store):
    a = row(
        "runs/a",
        etag="0x8D1",
        state={"status": "Running", "nested": {"k": [1, 2.5, None, True]}, "n": 3},
        provenance={"n": ["0000", "e0"], "nested": {"k": ["0000", "e0"]}},
    )
    b = row("runs/b", source=SRC2, etype="Microsoft.Storage.BlobCreated")
    assert await store.commit([insert(a), insert(b)], []) == set()
    loaded = await store.load([a.key, b.key, (SRC, "runs/missing")])
    assert loaded == {a.key: a, b.key: b}
    assert await store.load([]) == {}


async def test_insert_over_an_existing_row_is_a_conflict_unless_it_already_holds_that_write(store):
    a = row("runs/a", "0002", "e2")
    await store.commit([insert(a)], [])
    other = row("runs/a", "0003", "e3", state={"other": 1})
    assert await store.commit([insert(other)], []) == {a.key}
    # The same write made by another replica first: not written again, and nothing to redo.
    same = row("runs/a", "0002", "e2", updated_at="2027-01-01T00:00:00.000000Z")
    assert await store.commit([insert(same)], []) == set()
    # The same event with another state (the other replica joined other events into it): redo the fold.
    assert await store.commit([insert(row("runs/a", "0002", "e2", state={"more": 1}))], []) == {a.key}
    assert await stored(store, a) == a


async def test_compare_and_set_succeeds_only_from_the_expected_revision(store):
    a = row("runs/a", "0002", "e2")
    await store.commit([insert(a)], [])
    newer = row("runs/a", "0005", "e5", etag="x", state={"v": "5"}, updated_at="2026-01-02T00:00:00.000000Z")
    assert await store.commit([cas(newer, 0)], []) == {a.key}  # folded from an older row
    assert await store.commit([cas(newer, 2)], []) == {a.key}  # from a row that was never there
    assert await stored(store, a) == a
    assert await store.commit([cas(newer, 1)], []) == set()
    assert await stored(store, a) == at(newer, 2)
    # An update for an object that does not exist never creates it.
    ghost = row("runs/ghost", "0009", "e9")
    assert await store.commit([cas(ghost, 1)], []) == {ghost.key}
    assert await stored(store, ghost) is None


async def test_a_row_never_moves_backwards_even_from_the_expected_revision(store):
    a = row("runs/a", "0005", "e5")
    await store.commit([insert(a)], [])
    for seq, eid in [("0004", "e9"), ("0005", "e4"), ("00049", "e6")]:
        assert await store.commit([cas(row("runs/a", seq, eid), 1)], []) == {a.key}
    assert await stored(store, a) == a
    # Ordered equal, another state (a late event's information joined in): written.
    joined = row("runs/a", "0005", "e5", state={"x": 1})
    assert await store.commit([cas(joined, 1)], []) == set()
    assert await stored(store, a) == at(joined, 2)
    # Ties on the sequencer go to the larger event id; sequencers compare as text in code-point order.
    tie = row("runs/a", "0005", "e6")
    assert await store.commit([cas(tie, 2)], []) == set()
    lower_case_wins = row("runs/a", "0005a", "e0")  # 'a' (0x61) > '5'... and "0005a" > "0005"
    assert await store.commit([cas(lower_case_wins, 3)], []) == set()
    assert await stored(store, a) == at(lower_case_wins, 4)
    upper = row("runs/a", "0005B", "e9")  # 'B' (0x42) < 'a' (0x61): backwards in code-point order
    assert await store.commit([cas(upper, 4)], []) == {a.key}
    assert await stored(store, a) == at(lower_case_wins, 4)


async def test_a_mixed_batch_reports_exactly_the_conflicting_objects_and_writes_the_rest(store):
    base = [row(f"o{i}", "0001", f"e{i}") for i in range(6)]
    await store.commit([insert(r) for r in base], [])
    batch = [
        cas(row("o0", "0002", "n0"), 1),  # ok
        cas(row("o1", "0002", "n1"), 0),  # wrong expected
        cas(row("o2", "0000", "n2"), 1),  # backwards
        insert(row("o3", "0002", "n3")),  # exists
        insert(row("new", "0001", "n4")),  # ok
        cas(row("missing", "0001", "n5"), 1),  # absent
        cas(row("o4", "0002", "n6"), 1),  # ok
    ]
    conflicts = await store.commit(batch, [dead("fp-mixed")])
    assert conflicts == {(SRC, "o1"), (SRC, "o2"), (SRC, "o3"), (SRC, "missing")}
    now = {r.object: r.order for r in await all_rows(store)}
    assert now == {
        "o0": ("0002", "n0"),
        "o1": ("0001", "e1"),
        "o2": ("0001", "e2"),
        "o3": ("0001", "e3"),
        "o4": ("0002", "n6"),
        "o5": ("0001", "e5"),
        "new": ("0001", "n4"),
    }
    assert (await store.counts())["dead_letters"] == 1  # written in the same transaction despite conflicts


async def test_large_batches_in_one_commit(store):
    rows = [row(f"bulk/{i:05d}", "0001", f"e{i}", state={"i": i, "tags": {"k": "v" * (i % 50)}}) for i in range(3000)]
    assert await store.commit([insert(r) for r in rows], []) == set()
    newer = [row(r.object, "0002", r.event_id, state={"i": -1}) for r in rows]
    writes = [cas(n, 1) for n in newer]
    writes[1234] = cas(newer[1234], 0)
    assert await store.commit(writes, []) == {newer[1234].key}
    loaded = await store.load([r.key for r in rows])
    assert len(loaded) == 3000
    assert loaded[rows[1234].key] == rows[1234]
    assert loaded[rows[0].key] == at(newer[0], 2)


async def test_an_empty_commit_changes_nothing(store):
    assert await store.commit([], []) == set()
    assert await store.counts() == {"objects": 0, "dead_letters": 0}


# -- dead letters ---------------------------------------------------------------------------------------


async def test_dead_letters_are_stored_once_per_fingerprint(store):
    first = [dead("fp1", event_id="ev-1"), dead("fp2", body=b"\xff\xfebinary", size=9000), dead("fp1")]
    assert await store.commit([], first) == set()
    assert await store.commit([], [dead("fp2", reason="again"), dead("fp3", reason="third")]) == set()
    assert (await store.counts())["dead_letters"] == 3
    listed = await store.dead_letters()
    assert [d["origin"] for d in listed] == ["origin-fp1", "origin-fp2", "origin-fp3"]
    assert [d["reason"] for d in listed] == ["no subject", "no subject", "third"]
    one, two, _ = listed
    assert one["event_id"] == "ev-1" and one["body"] == '{"bad": true}' and one["truncated"] is False
    assert two["event_id"] is None and two["body"] == "\\xff\\xfebinary" and two["truncated"] is True
    assert two["body_size"] == 9000
    assert one["received_at"].endswith("Z")
    ids = [d["id"] for d in listed]
    assert ids == sorted(ids)
    page = await store.dead_letters(limit=1, after_id=ids[0])
    assert [d["id"] for d in page] == [ids[1]]
    assert await store.dead_letters(after_id=ids[-1]) == []
    newest = await store.dead_letters(limit=2, newest_first=True)
    assert [d["id"] for d in newest] == sorted(ids, reverse=True)[:2]


# -- reads ----------------------------------------------------------------------------------------------


async def test_query_filters_and_keyset_pagination(store):
    rows = [
        row("runs/r1", etype="ML.RunStatusChanged", state={"status": "Failed", "team": "nlp"}),
        row("runs/r2", etype="ML.RunStatusChanged", state={"status": "Completed", "team": "nlp"}),
        row("runs/r3", etype="ML.RunCompleted", state={"status": "Failed", "team": "vision"}),
        row("runs%/x", etype="ML.RunStatusChanged", state={"status": "Failed"}),
        row("runsX", etype="ML.RunStatusChanged", state={"status": "Failed"}),
        row("run_s/y", etype="ML.RunStatusChanged", state={"status": 1}),
        row("models/m1", etype="ML.ModelRegistered", state={"name": "m1", "version": "3"}),
        row("runs/r1", source=SRC2, etype="ML.RunStatusChanged", state={"status": "Failed"}),
    ]
    await store.commit([insert(r) for r in rows], [])

    def objects(result):
        return [(r.source == SRC2, r.object) for r in result]

    assert objects(await store.query(Query(source=SRC.upper()))) == [
        (False, "models/m1"),
        (False, "run_s/y"),
        (False, "runs%/x"),
        (False, "runs/r1"),
        (False, "runs/r2"),
        (False, "runs/r3"),
        (False, "runsX"),
    ]
    assert objects(await store.query(Query(prefix="runs/"))) == [
        (False, "runs/r1"),
        (False, "runs/r2"),
        (False, "runs/r3"),
        (True, "runs/r1"),
    ]
    assert objects(await store.query(Query(prefix="runs%"))) == [(False, "runs%/x")]
    assert objects(await store.query(Query(prefix="run_"))) == [(False, "run_s/y")]
    assert objects(await store.query(Query(event_type="ML.RunCompleted"))) == [(False, "runs/r3")]
    assert objects(await store.query(Query(object="runs/r1"))) == [(False, "runs/r1"), (True, "runs/r1")]
    assert objects(await store.query(Query(object="runs"))) == []  # exact, not a prefix
    failed = Query(source=SRC, state_equals=(("status", "Failed"),))
    assert objects(await store.query(failed)) == [
        (False, "runs%/x"),
        (False, "runs/r1"),
        (False, "runs/r3"),
        (False, "runsX"),
    ]
    both = Query(state_equals=(("status", "Failed"), ("team", "nlp")))
    assert objects(await store.query(both)) == [(False, "runs/r1")]
    assert objects(await store.query(Query(state_equals=(("status", "1"),)))) == [(False, "run_s/y")]
    assert objects(await store.query(Query(state_equals=(("absent", "x"),)))) == []
    with pytest.raises(ValueError):
        await store.query(Query(state_equals=(("a') OR 1=1 --", "x"),)))
    combined = Query(
        source=SRC,
        prefix="runs",
        event_type="ML.RunStatusChanged",
        state_equals=(("status", "Failed"),),
        after=(SRC, "runs%/x"),
        limit=10,
    )
    assert objects(await store.query(combined)) == [(False, "runs/r1"), (False, "runsX")]

    # Keyset pages walk everything once, in order, whatever the page size.
    everything = objects(await store.query(Query(limit=100)))
    assert len(everything) == len(rows)
    for size in (1, 3):
        walked, after = [], None
        while True:
            page = await store.query(Query(after=after, limit=size))
            walked += objects(page)
            if len(page) < size:
                break
            after = page[-1].key
        assert walked == everything


OBJECTS = [
    "b",
    "B",
    "a",
    "A",
    "_x",
    "a b",
    "a-b",
    "ab",
    "a\u00e9",
    "\u00e9",
    "\u00c9",
    "e",
    "z",
    "Z",
    "\u65e5\u672c",
    "\U0001f600",
    "\uff21",
    "a/b",
    "a.b",
    "10",
    "9",
    "\u00df",
    "ss",
    "%",
    "~",
]


async def test_export_is_in_code_point_order_like_python(store):
    sources = [SRC, SRC2, "/subscriptions/S/x", "/subscriptions/s/\u00e9"]
    rows = [row(obj, source=src, eid=f"e{i}") for src in sources for i, obj in enumerate(OBJECTS)]
    await store.commit([insert(r) for r in reversed(rows)], [])
    exported = await all_rows(store)
    assert [r.key for r in exported] == sorted(r.key for r in rows)
    # The same order where sequencers compare: an upper-case sequencer is older than a lower-case one.
    assert objects_after(await store.query(Query(source=SRC, after=(SRC, "a"), limit=3))) == ["a b", "a-b", "a.b"]
    assert objects_after(await store.query(Query(source=SRC, prefix="a"))) == sorted(
        o for o in OBJECTS if o.startswith("a")
    )


async def test_keys_are_the_keys_of_the_query_without_reading_state(store):
    sources = [SRC, SRC2]
    rows = [row(obj, source=src, eid=f"e{i}") for src in sources for i, obj in enumerate(OBJECTS)]
    await store.commit([insert(r) for r in rows], [])
    for q in (
        Query(source=SRC, prefix="a"),
        Query(source=SRC2, prefix="a/"),
        Query(source=SRC, after=(SRC, "a"), limit=3),
        Query(prefix="%"),
        Query(state_equals=(("status", "Failed"),)),
        Query(limit=1000),
    ):
        assert await store.keys(q) == [r.key for r in await store.query(q)], q
    assert await store.keys(Query(source=SRC, prefix="zzz-none")) == []


def objects_after(result: list[Row]) -> list[str]:
    return [r.object for r in result]


async def test_export_pages_through_more_rows_than_one_page(store):
    rows = [row(f"o{i:05d}", eid=f"e{i}") for i in range(5003)]
    await store.commit([insert(r) for r in rows], [])
    exported = await all_rows(store)
    assert [r.key for r in exported] == [r.key for r in rows]
    assert exported[5001] == rows[5001]


async def test_recent_is_newest_first(store):
    rows = [row(f"o{i}", updated_at=f"2026-01-0{1 + i % 4}T00:00:00.000000Z") for i in range(8)]
    await store.commit([insert(r) for r in rows], [])
    recent = await store.recent(5)
    assert [(r.updated_at[:10], r.object) for r in recent] == [
        ("2026-01-04", "o3"),
        ("2026-01-04", "o7"),
        ("2026-01-03", "o2"),
        ("2026-01-03", "o6"),
        ("2026-01-02", "o1"),
    ]
    assert len(await store.recent(100)) == 8


async def test_counts(store):
    await store.commit([insert(row(f"o{i}")) for i in range(7)], [dead("a"), dead("b")])
    await store.commit([cas(row("o1", "0002"), 1)], [dead("a")])
    assert await store.counts() == {"objects": 7, "dead_letters": 2}


# -- lifecycle and failures -----------------------------------------------------------------------------


async def test_opening_the_schema_again_is_idempotent_and_keeps_the_data(backend, store):
    a = row("runs/a")
    await store.commit([insert(a)], [dead("fp")])
    for _ in range(2):
        again = backend.new_store()
        await again.open()
        try:
            assert await again.load([a.key]) == {a.key: a}
            assert await again.counts() == {"objects": 1, "dead_letters": 1}
        finally:
            await again.close()
    assert await backend.sql("SELECT value FROM meta WHERE key = 'schema_version'") == [("3",)]
    await store.ping()


async def test_replicas_opening_an_empty_database_at_once_all_succeed(backend, store):
    await store.close()
    await backend.sql("DROP TABLE projection")
    await backend.sql("DROP TABLE dead_letters")
    await backend.sql("DROP TABLE meta")
    await backend.sql("DROP TABLE changes")
    if backend.kind == "postgres":
        await backend.sql("DROP TABLE feed")
    replicas = [backend.new_store() for _ in range(4)]
    try:
        await asyncio.gather(*(r.open() for r in replicas))
        a = row("runs/a")
        assert await replicas[0].commit([insert(a)], []) == set()
        assert [await r.load([a.key]) for r in replicas] == [{a.key: a}] * 4
    finally:
        for r in replicas:
            await r.close()


async def test_a_newer_schema_is_refused(backend, store):
    await backend.sql("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    newer = backend.new_store()
    with pytest.raises(StoreError, match="99"):
        await newer.open()
    await newer.close()


async def test_ping_raises_store_error_on_a_closed_store(backend, store):
    await store.ping()
    await store.close()
    with pytest.raises(StoreError):
        await store.ping()
    with pytest.raises(StoreError):
        await store.load([(SRC, "x")])
    with pytest.raises(StoreError):
        await store.commit([insert(row("x"))], [])


UNREACHABLE = {
    "sqlite": "sqlite:////proc/no-such-folder/projection.sqlite",
    "postgres": "postgresql://postgres@127.0.0.1:1/nothing",
}


async def test_an_unreachable_store_raises_store_error(backend):
    s = open_store(UNREACHABLE[backend.kind])
    with pytest.raises(StoreError):
        await s.open()
    with pytest.raises(StoreError):
        await s.ping()
    await s.close()


async def test_nul_characters_never_make_a_write_fail_forever(backend, store):
    # Events may carry \u0000 (the decoder accepts it). PostgreSQL text and jsonb cannot hold NUL: the store
    # keeps U+FFFD instead; SQLite keeps NUL. Either way the write goes through and the object stays usable.
    nul = "\x00" if backend.kind == "sqlite" else "\ufffd"
    literal = "\\u0000 stays text"  # a backslash then u0000: not a NUL, kept as is everywhere
    a = row("blobs/a\x00b", "0001", "e\x001", etag="x\x00", state={"k\x00": "v\x00", "lit": literal})
    assert await store.commit([insert(a)], [dead("fp-nul", event_id="id\x00", reason="bad\x00")]) == set()
    loaded = (await store.load([a.key]))[a.key]
    assert loaded.state == {f"k{nul}": f"v{nul}", "lit": literal}
    assert (loaded.event_id, loaded.etag) == (f"e{nul}1", f"x{nul}")
    newer = row("blobs/a\x00b", "0002", "e2", state={})
    assert await store.commit([cas(newer, 0)], []) == {a.key}  # the caller's key comes back
    assert await store.commit([cas(newer, loaded.revision)], []) == set()
    assert [r.order for r in await all_rows(store)] == [("0002", "e2")]
    assert (await store.dead_letters())[0]["reason"] == f"bad{nul}"


async def test_a_store_from_before_merges_is_migrated_at_open_and_its_rows_are_one_events_state(backend):
    # The version 1 tables as each store created them (PostgreSQL's compared columns in code-point order).
    json_type, text = ("TEXT", "TEXT") if backend.kind == "sqlite" else ("JSONB", 'TEXT COLLATE "C"')
    for statement in [
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        "INSERT INTO meta VALUES ('schema_version', '1')",
        f"CREATE TABLE projection (source {text} NOT NULL, object {text} NOT NULL, event_type {text} NOT NULL, "
        f"event_id {text} NOT NULL, sequencer {text} NOT NULL, etag TEXT, state {json_type} NOT NULL, "
        f"updated_at {text} NOT NULL, PRIMARY KEY (source, object))",
        f"INSERT INTO projection VALUES ('{SRC}', 'runs/a', 'T.Changed', 'e5', '0005', NULL, "
        """'{"status": "Failed"}', '2026-01-01T00:00:00.000000Z')""",
    ]:
        await backend.sql(statement)
    store = backend.new_store()
    await store.open()
    try:
        old = (await store.load([(SRC, "runs/a")]))[(SRC, "runs/a")]
        assert (old.state, old.provenance, old.revision) == ({"status": "Failed"}, {}, 0)
        # A later fold that joins a late event's field: a compare-and-set over revision 0.
        joined = replace(old, state={"status": "Failed", "queued_at": "t0"}, provenance={"queued_at": ["0001", "e1"]})
        assert await store.commit([cas(joined, 0)], []) == set()
        assert await stored(store, old) == at(joined, 1)
    finally:
        await store.close()
    assert await backend.sql("SELECT value FROM meta WHERE key = 'schema_version'") == [("3",)]


async def test_several_sqlite_stores_opening_one_new_file_at_once_all_open(tmp_path):
    # Two workers on one machine start together on a fresh file: switching it to WAL raced ("database is
    # locked", about 1 open in 50 at three at a time, without SQLite's busy handler to wait).
    from processor.stores.sqlite import SqliteStore

    for trial in range(200):
        stores = [SqliteStore(f"sqlite:///{tmp_path}/t{trial}.sqlite") for _ in range(3)]
        results = await asyncio.gather(*(s.open() for s in stores), return_exceptions=True)
        for s in stores:
            await s.close()
        assert [r for r in results if r is not None] == [], f"trial {trial}"
