"""SQLite projection store: the embedded default.

WAL mode and a busy timeout let several worker processes on one machine share the file; its calls run on one
thread of its own (`processor.stores.sqlite_thread`). URL forms: `processor.stores.urls`.
Its change feed: `processor.stores.sqlite_feed`.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Collection
from typing import Any, TypeVar

import orjson

from processor.core.model import DeadLetter, ObjectKey, Row, Write
from processor.stores import sqlite_feed
from processor.stores.base import ProjectionStore, Query, StoreError, dead_letter_dict, state_field, utc_now
from processor.stores.feed import ChangePage, ChangeQuery, FeedRetention, HeadWatch, PruneSchedule
from processor.stores.history import HistoryEntry, records
from processor.stores.sqlite_thread import SqliteThread, connect, immediate_transaction
from processor.stores.urls import sqlite_path

T = TypeVar("T")

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
POLL_INTERVAL = 0.1  # seconds between looks at the feed's head while someone waits (no notifications here)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- A rowid table: rows carry a state of hundreds of bytes, too large for WITHOUT ROWID to pay (measured 2x).
CREATE TABLE IF NOT EXISTS projection (
    source TEXT NOT NULL,
    object TEXT NOT NULL,
    event_type TEXT NOT NULL,
    event_id TEXT NOT NULL,
    sequencer TEXT NOT NULL,
    etag TEXT,
    state TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    provenance TEXT,
    revision INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (source, object)
);
CREATE INDEX IF NOT EXISTS projection_updated ON projection (updated_at);
CREATE INDEX IF NOT EXISTS projection_type ON projection (event_type, source, object);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE,
    received_at TEXT NOT NULL,
    origin TEXT NOT NULL,
    reason TEXT NOT NULL,
    event_id TEXT,
    body BLOB NOT NULL,
    body_size INTEGER NOT NULL
);
"""
_COLUMNS = "source, object, event_type, event_id, sequencer, etag, state, updated_at, provenance, revision"
_INSERT = (
    f"INSERT INTO projection ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, object) DO NOTHING"
)
# The compare-and-set: only over the very row the fold started from (its revision), and never backwards.
_UPDATE = (
    "UPDATE projection SET event_type = ?, event_id = ?, sequencer = ?, etag = ?, state = ?, updated_at = ?, "
    "provenance = ?, revision = ? "
    "WHERE source = ? AND object = ? AND revision = ? "
    "AND (sequencer < ? OR (sequencer = ? AND event_id <= ?))"
)
_CHUNK = 400


class SqliteStore(ProjectionStore):
    def __init__(self, url: str):
        self.url = url
        self.path = sqlite_path(url)
        self._db: sqlite3.Connection | None = None
        self._thread = SqliteThread("sqlite-store")
        self._watch = HeadWatch(lambda: self._run(lambda: sqlite_feed.head(self._conn())), POLL_INTERVAL)
        self._prunes = PruneSchedule()

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await self._thread.run(fn, *args)
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite store {self.path}: {exc}") from exc
        except RuntimeError as exc:  # the thread is shut down: the store was closed
            raise StoreError(f"sqlite store {self.path} is closed") from exc

    async def open(self) -> None:
        await self._run(self._open)

    def _open(self) -> None:
        try:
            db = connect(self.path)
        except OSError as exc:  # only the folder's creation raises OSError (sqlite3's own are sqlite3.Error)
            raise sqlite3.OperationalError(f"cannot create the folder for {self.path}: {exc}") from exc
        # FULL: a commit is on disk before the checkpoint that follows it can name it, power loss included.
        db.execute("PRAGMA synchronous=FULL")
        try:
            # executescript commits by itself; the statements are idempotent, so concurrent openers are safe.
            db.executescript(_SCHEMA + sqlite_feed.SCHEMA)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            (version,) = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if int(version) > SCHEMA_VERSION:
                raise sqlite3.OperationalError(
                    f"schema version {version} is newer than this processor understands ({SCHEMA_VERSION})"
                )
            if int(version) < 2:
                _migrate_to_2(db)
            if int(version) < 3:
                sqlite_feed.migrate_to_3(db)
            for trigger in sqlite_feed.TRIGGERS:
                db.execute(trigger)
        except BaseException:
            db.close()
            raise
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            await self._run(self._db.close)
            self._db = None
        self._thread.shutdown()

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise sqlite3.OperationalError("store is not open")
        return self._db

    async def load(self, keys: Collection[ObjectKey]) -> dict[ObjectKey, Row]:
        return await self._run(self._load, list(keys))

    def _load(self, keys: list[ObjectKey]) -> dict[ObjectKey, Row]:
        db = self._conn()
        out: dict[ObjectKey, Row] = {}
        # Equality on source plus IN on object walks the primary key; a row-value IN would scan.
        by_source: dict[str, list[str]] = {}
        for source, obj in keys:
            by_source.setdefault(source, []).append(obj)
        for source, objects in by_source.items():
            for i in range(0, len(objects), _CHUNK):
                chunk = objects[i : i + _CHUNK]
                sql = f"SELECT {_COLUMNS} FROM projection WHERE source = ? AND object IN ({','.join('?' * len(chunk))})"
                for r in db.execute(sql, [source, *chunk]):
                    row = _row(r)
                    out[row.key] = row
        return out

    async def commit(self, writes: list[Write], dead_letters: list[DeadLetter]) -> set[ObjectKey]:
        conflicts, head = await self._run(self._commit, writes, dead_letters)
        self._watch.saw(head)
        if self._prunes.due() and (not self.retention.unlimited or self.history is not None):
            try:
                _, more = await self.prune_changes(self.retention)
            except StoreError as exc:  # the commit stands; pruning is tried again later
                log.warning("pruning the change feed failed: %s", exc)
                more = False
            self._prunes.done(more)
        return conflicts

    def _commit(self, writes: list[Write], dead_letters: list[DeadLetter]) -> tuple[set[ObjectKey], int]:
        db = self._conn()
        inserts, updates = [], []
        texts: dict[ObjectKey, tuple[str, str | None]] = {}
        # Key order keeps the primary-key index pages hot across one transaction.
        for w in sorted(writes, key=lambda w: w.row.key):
            r = w.row
            state = orjson.dumps(r.state).decode()
            provenance = orjson.dumps(r.provenance).decode() if r.provenance else None
            texts[r.key] = (state, provenance)
            if w.expected is None:
                inserts.append(
                    (
                        r.source,
                        r.object,
                        r.event_type,
                        r.event_id,
                        r.sequencer,
                        r.etag,
                        state,
                        r.updated_at,
                        provenance,
                        r.revision,
                    )
                )
            else:
                updates.append(
                    (
                        r.event_type,
                        r.event_id,
                        r.sequencer,
                        r.etag,
                        state,
                        r.updated_at,
                        provenance,
                        r.revision,
                        r.source,
                        r.object,
                        w.expected,
                        r.sequencer,
                        r.sequencer,
                        r.event_id,
                    )
                )
        with immediate_transaction(db):
            # rowcount, not total_changes: that one counts the feed triggers' rows too.
            written = 0
            if inserts:
                written += db.executemany(_INSERT, inserts).rowcount
            if updates:
                written += db.executemany(_UPDATE, updates).rowcount
            conflicts: set[ObjectKey] = set()
            if written < len(writes):
                conflicts = self._failed(db, writes, texts)
            if self.history is not None and (kept := records(writes, conflicts)):
                sqlite_feed.record_history(db, kept, self.history.per_object)
            if dead_letters:
                now = utc_now()
                db.executemany(
                    "INSERT INTO dead_letters (fingerprint, received_at, origin, reason, event_id, body, body_size) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (fingerprint) DO NOTHING",
                    [(d.fingerprint, now, d.origin, d.reason, d.event_id, d.body, d.body_size) for d in dead_letters],
                )
            head = sqlite_feed.head(db)
        return conflicts, head

    def _failed(
        self, db: sqlite3.Connection, writes: list[Write], texts: dict[ObjectKey, tuple[str, str | None]]
    ) -> set[ObjectKey]:
        """Which compare-and-sets failed, by what is stored now. A row stored as this commit wrote it (its text)
        is compared without decoding: with two writers in one container (parallel ingest) a commit fails on
        one row, the container's, and decoding every row it wrote doubled the ingest's peak memory."""
        by_source: dict[str, list[str]] = {}
        for w in writes:
            by_source.setdefault(w.row.source, []).append(w.row.object)
        found: dict[ObjectKey, tuple[str, str, str, str | None]] = {}
        for source, objects in by_source.items():
            for i in range(0, len(objects), _CHUNK):
                chunk = objects[i : i + _CHUNK]
                sql = (
                    "SELECT object, sequencer, event_id, state, provenance FROM projection "
                    f"WHERE source = ? AND object IN ({','.join('?' * len(chunk))})"
                )
                for obj, sequencer, event_id, state, provenance in db.execute(sql, [source, *chunk]):
                    found[(source, obj)] = (sequencer, event_id, state, provenance)
        unsure = []
        for w in writes:
            stored = found.get(w.row.key)
            if stored is None or (stored[0], stored[1]) != w.row.order or (stored[2], stored[3]) != texts[w.row.key]:
                unsure.append(w)
        rows = self._load([w.row.key for w in unsure]) if unsure else {}
        return {w.row.key for w in unsure if not _holds(rows.get(w.row.key), w.row)}

    async def query(self, q: Query) -> list[Row]:
        return await self._run(lambda: [_row(r) for r in self._select(_COLUMNS, q)])

    async def keys(self, q: Query) -> list[ObjectKey]:
        return await self._run(lambda: [(source, obj) for source, obj in self._select("source, object", q)])

    def _select(self, columns: str, q: Query) -> list[tuple]:
        where, params = _filters(q.source, q.prefix, q.object, q.event_type, q.state_equals)
        if q.after is not None:
            where.append("(source, object) > (?, ?)")
            params += list(q.after)
        sql = f"SELECT {columns} FROM projection"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY source, object LIMIT ?"
        params.append(q.limit)
        return self._conn().execute(sql, params).fetchall()

    async def recent(self, limit: int) -> list[Row]:
        sql = f"SELECT {_COLUMNS} FROM projection ORDER BY updated_at DESC, source, object LIMIT ?"
        return await self._run(lambda: [_row(r) for r in self._conn().execute(sql, (limit,))])

    async def dead_letters(
        self, limit: int = 100, after_id: int | None = None, newest_first: bool = False
    ) -> list[dict[str, Any]]:
        sql = (
            "SELECT id, received_at, origin, reason, event_id, body, body_size FROM dead_letters "
            f"WHERE id > ? ORDER BY id {'DESC' if newest_first else ''} LIMIT ?"
        )
        rows = await self._run(lambda: self._conn().execute(sql, (after_id or 0, limit)).fetchall())
        return [dead_letter_dict(*r) for r in rows]

    async def counts(self) -> dict[str, int]:
        def count() -> dict[str, int]:
            db = self._conn()
            return {
                "objects": db.execute("SELECT count(*) FROM projection").fetchone()[0],
                "dead_letters": db.execute("SELECT count(*) FROM dead_letters").fetchone()[0],
            }

        return await self._run(count)

    async def ping(self) -> None:
        await self._run(lambda: self._conn().execute("SELECT 1").fetchone())

    # -- the change feed ------------------------------------------------------------------------------------

    async def changes(self, q: ChangeQuery) -> ChangePage:
        where, params = _filters(q.source, q.prefix, None, q.event_type, q.state_equals)
        page = await self._run(lambda: sqlite_feed.read_changes(self._conn(), q, where, params))
        self._watch.saw(page.head)
        return page

    async def wait_for_changes(self, after: int, timeout: float) -> int:
        return await self._watch.wait(after, timeout)

    async def feed_cursor(self, name: str) -> int | None:
        return await self._run(lambda: sqlite_feed.cursor(self._conn(), name))

    async def save_feed_cursor(self, name: str, position: int) -> None:
        await self._run(lambda: sqlite_feed.save_cursor(self._conn(), name, position))

    async def prune_changes(self, retention: FeedRetention) -> tuple[int, bool]:
        pruned = await self._run(lambda: sqlite_feed.prune(self._conn(), retention))
        if self.history is not None and self.history.max_age:
            age = self.history.max_age
            if await self._run(lambda: sqlite_feed.prune_history(self._conn(), age)) >= sqlite_feed.PRUNE_BATCH:
                pruned = (pruned[0], True)
        return pruned

    async def object_history(self, source: str, obj: str, limit: int = 100) -> list[HistoryEntry]:
        return await self._run(lambda: sqlite_feed.read_history(self._conn(), source.lower(), obj, limit))


def _filters(
    source: str | None,
    prefix: str | None,
    obj: str | None,
    event_type: str | None,
    state_equals: tuple[tuple[str, str], ...],
) -> tuple[list[str], list[str | int]]:
    """The WHERE terms (and their parameters) of a `Query`'s or a `ChangeQuery`'s filters."""
    where: list[str] = []
    params: list[str | int] = []
    if source is not None:
        where.append("source = ?")
        params.append(source.lower())
    if prefix:
        # Range instead of LIKE: object names may contain % and _.
        where.append("object >= ? AND object < ?")
        params += [prefix, prefix + "\U0010ffff"]
    if obj is not None:
        where.append("object = ?")
        params.append(obj)
    if event_type is not None:
        where.append("event_type = ?")
        params.append(event_type)
    for field, value in state_equals:
        where.append("CAST(json_extract(state, ?) AS TEXT) = ?")
        params += ["$." + state_field(field), value]
    return where, params


def _row(r: tuple) -> Row:
    return Row.from_record(r, orjson.loads(r[6]), orjson.loads(r[8]) if r[8] is not None else None)


def _holds(stored: Row | None, row: Row) -> bool:
    """Whether the stored row already says what `row` would (another writer wrote the same): no conflict."""
    return (
        stored is not None
        and stored.order == row.order
        and stored.state == row.state
        and stored.provenance == row.provenance
    )


def _migrate_to_2(db: sqlite3.Connection) -> None:
    """Merge reducers: which event set each value, and a revision for the compare-and-set. A row from before
    is one event's worth of state (no provenance) at revision 0."""
    with immediate_transaction(db):
        columns = {r[1] for r in db.execute("PRAGMA table_info(projection)")}
        if "provenance" not in columns:
            db.execute("ALTER TABLE projection ADD COLUMN provenance TEXT")
        if "revision" not in columns:
            db.execute("ALTER TABLE projection ADD COLUMN revision INTEGER NOT NULL DEFAULT 0")
        db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
