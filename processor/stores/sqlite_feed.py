"""The SQLite store's change feed (its table, the triggers that fill it, reading, pruning, the migration) and
its object history (`processor.stores.history`).

Triggers on the projection write each change in the row's own transaction, numbered by AUTOINCREMENT. Writers
hold the database's one write lock from BEGIN IMMEDIATE to COMMIT, so positions are in commit order, and a
rolled-back transaction rolls its numbers back too: no gaps. Functions over a connection, run on the store's
thread by `processor.stores.sqlite`. Imports `processor.stores.feed` and `processor.stores.sqlite_thread`.
"""

from __future__ import annotations

import sqlite3

import orjson

from processor.stores.feed import PRUNE_BATCH, Change, ChangePage, ChangeQuery, FeedRetention, check_position, page_of
from processor.stores.history import HistoryEntry, HistoryRecord
from processor.stores.sqlite_thread import immediate_transaction

# AUTOINCREMENT: a position is never used twice, even once retention has deleted every change.
SCHEMA = """
CREATE TABLE IF NOT EXISTS changes (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL,
    object TEXT NOT NULL,
    event_type TEXT NOT NULL,
    event_id TEXT NOT NULL,
    sequencer TEXT NOT NULL,
    etag TEXT,
    state TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    revision INTEGER NOT NULL,
    committed_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    object TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    time TEXT NOT NULL,
    sequencer TEXT NOT NULL,
    outcome TEXT NOT NULL,
    partition TEXT,
    sequence_number INTEGER,
    recorded_at TEXT NOT NULL,
    UNIQUE (source, object, event_id)
);
"""
_COLUMNS = "source, object, event_type, event_id, sequencer, etag, state, updated_at, revision"
_NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
_NEW_VALUES = ", ".join("NEW." + c for c in _COLUMNS.split(", "))
# Created after the migrations (they name version 2's columns). An INSERT that does nothing (ON CONFLICT) and
# an UPDATE whose compare-and-set fails write no row, so they fire nothing. An UPDATE that changes neither the
# state nor the object's event (a storage container's row, written by every batch beneath it so that two
# writers cannot both commit: only its revision moves) is no change either.
_CHANGED = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in ("state", "event_id", "sequencer", "event_type", "etag"))
TRIGGERS = [
    f"CREATE TRIGGER IF NOT EXISTS feed_on_{what.lower()} AFTER {what} ON projection "
    f"{'WHEN ' + _CHANGED + ' ' if what == 'UPDATE' else ''}BEGIN "
    f"INSERT INTO changes ({_COLUMNS}, committed_at) VALUES ({_NEW_VALUES}, {_NOW}); END"
    for what in ("INSERT", "UPDATE")
]
HEAD = "SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0)"
_PRUNED = "SELECT coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'feed_pruned_through'), 0)"


def head(db: sqlite3.Connection) -> int:
    return int(db.execute(HEAD).fetchone()[0])


def read_changes(db: sqlite3.Connection, q: ChangeQuery, where: list[str], params: list[str | int]) -> ChangePage:
    """`q`'s page; `where` and `params` are its filters as the store's WHERE terms."""
    sql = f"SELECT position, {_COLUMNS}, committed_at FROM changes WHERE position > ?"
    sql += "".join(" AND " + w for w in where) + " ORDER BY position LIMIT ?"
    # One read transaction: the head, the pruning mark and the changes from one snapshot.
    db.execute("BEGIN")
    try:
        newest = head(db)
        pruned = int(db.execute(_PRUNED).fetchone()[0])
        check_position(q.after, newest, pruned)
        records = db.execute(sql, [q.after, *params, q.limit]).fetchall()
    finally:
        db.execute("COMMIT")
    return page_of([_change(r) for r in records], q, newest, pruned)


def prune(db: sqlite3.Connection, retention: FeedRetention) -> tuple[int, bool]:
    """Delete at most a batch of what `retention` no longer keeps: (pruned through, more left)."""
    with immediate_transaction(db):
        newest = head(db)
        pruned = int(db.execute(_PRUNED).fetchone()[0])
        window = min(newest, pruned + PRUNE_BATCH)
        cut = pruned
        if retention.max_changes:
            cut = max(cut, newest - retention.max_changes)
        if retention.max_age:
            # The first change young enough to keep, within the window: every one before it is older.
            young = db.execute(
                "SELECT min(position) FROM changes WHERE position > ? AND position <= ? "
                "AND committed_at >= strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?)",
                (pruned, window, f"-{retention.max_age} seconds"),
            ).fetchone()[0]
            cut = max(cut, window if young is None else young - 1)
        target = min(cut, window)
        if target > pruned:
            db.execute("DELETE FROM changes WHERE position <= ?", (target,))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('feed_pruned_through', ?)", (str(target),))
    return max(target, pruned), cut > target


def cursor(db: sqlite3.Connection, name: str) -> int | None:
    found = db.execute("SELECT CAST(value AS INTEGER) FROM meta WHERE key = ?", ("cursor/" + name,)).fetchone()
    return None if found is None else int(found[0])


def save_cursor(db: sqlite3.Connection, name: str, position: int) -> None:
    with immediate_transaction(db):
        db.execute(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
            "SET value = max(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))",
            ("cursor/" + name, str(position)),
        )


def record_history(db: sqlite3.Connection, recs: list[HistoryRecord], per_object: int) -> None:
    """Keep `recs` (in the caller's transaction), then trim each of their objects to its newest `per_object`."""
    db.executemany(
        "INSERT INTO history (source, object, event_id, event_type, time, sequencer, outcome, partition, "
        f"sequence_number, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, {_NOW}) "
        "ON CONFLICT (source, object, event_id) DO NOTHING",
        recs,
    )
    keys = list(dict.fromkeys((r[0], r[1]) for r in recs))
    db.executemany(
        "DELETE FROM history WHERE source = ? AND object = ? AND id <= (SELECT id FROM history "
        "WHERE source = ? AND object = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
        [(s, o, s, o, per_object) for s, o in keys],
    )


def read_history(db: sqlite3.Connection, source: str, obj: str, limit: int) -> list[HistoryEntry]:
    """The object's kept events, newest recorded first."""
    rows = db.execute(
        "SELECT event_id, event_type, time, sequencer, outcome, partition, sequence_number, recorded_at "
        "FROM history WHERE source = ? AND object = ? ORDER BY id DESC LIMIT ?",
        (source, obj, limit),
    ).fetchall()
    return [HistoryEntry(*r) for r in rows]


def prune_history(db: sqlite3.Connection, max_age: float) -> int:
    """Delete at most a batch of the oldest kept events older than `max_age` seconds; how many."""
    with immediate_transaction(db):
        return db.execute(
            "DELETE FROM history WHERE id IN (SELECT id FROM history ORDER BY id LIMIT ?) "
            "AND recorded_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?)",
            (PRUNE_BATCH, f"-{max_age} seconds"),
        ).rowcount


def migrate_to_3(db: sqlite3.Connection) -> None:
    """The change feed. Its first changes are the rows already stored, one each in (source, object) order, so
    that replaying the feed from its start gives the projection here too; the triggers come in the same
    transaction, so no write falls between."""
    with immediate_transaction(db):
        (version,) = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if int(version) >= 3:  # another opener migrated while this one waited for the lock
            return
        db.execute(
            f"INSERT INTO changes ({_COLUMNS}, committed_at) "
            f"SELECT {_COLUMNS}, {_NOW} FROM projection ORDER BY source, object"
        )
        for trigger in TRIGGERS:
            db.execute(trigger)
        db.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")


def _change(r: tuple) -> Change:
    return Change(r[0], r[1], r[2], r[3], r[4], r[5], r[6], orjson.loads(r[7]), r[8], r[9], r[10])
