"""PostgreSQL projection store, for several replicas sharing one projection.

asyncpg with a small pool. Every write batch is one statement (data-modifying CTEs over unnested arrays),
so a commit costs one round trip whatever its size, and runs in its own implicit transaction.

Text columns that are compared or sorted use COLLATE "C": code-point order, the same as SQLite and Python,
whatever the database's default collation.

URL forms: postgresql://user:password@host:port/database?sslmode=require (postgres:// too).
Its change feed: `processor.stores.postgres_feed`.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Collection
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import asyncpg
import orjson

from processor.core.model import DeadLetter, ObjectKey, Row, Write
from processor.stores import postgres_feed
from processor.stores.base import ProjectionStore, Query, StoreError, dead_letter_dict, state_field, utc_now
from processor.stores.feed import PRUNE_BATCH, ChangePage, ChangeQuery, FeedRetention, HeadWatch, PruneSchedule
from processor.stores.history import HistoryEntry, HistoryRecord, records
from processor.stores.urls import is_postgres_url

T = TypeVar("T")

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
# Seconds between looks at the feed's head while someone waits: only a safety net, NOTIFY wakes waiters.
POLL_INTERVAL = 2.0
# The two-int4 advisory key space does not overlap the single-bigint one; 0x70726f63 is "proc".
_SCHEMA_LOCK = (0x70726F63, 1)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS projection (
    source TEXT COLLATE "C" NOT NULL,
    object TEXT COLLATE "C" NOT NULL,
    event_type TEXT COLLATE "C" NOT NULL,
    event_id TEXT COLLATE "C" NOT NULL,
    sequencer TEXT COLLATE "C" NOT NULL,
    etag TEXT,
    state JSONB NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL,
    provenance JSONB,
    revision BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (source, object)
);
CREATE INDEX IF NOT EXISTS projection_updated ON projection (updated_at);
CREATE INDEX IF NOT EXISTS projection_type ON projection (event_type, source, object);
CREATE TABLE IF NOT EXISTS dead_letters (
    id BIGSERIAL PRIMARY KEY,
    fingerprint TEXT NOT NULL UNIQUE,
    received_at TEXT NOT NULL,
    origin TEXT NOT NULL,
    reason TEXT NOT NULL,
    event_id TEXT,
    body BYTEA NOT NULL,
    body_size INTEGER NOT NULL
);
"""
_COLUMNS = "source, object, event_type, event_id, sequencer, etag, state, updated_at, provenance, revision"

# One statement per batch. Its parts, in the order they take effect:
# - `lk` locks the existing rows of every written object, in key order. Two replicas committing overlapping
#   batches then queue on the first shared row instead of deadlocking on rows taken in opposite orders
#   (UPDATE ... FROM locks in whatever order its join produces). `ins`, `upd` and `dl` wait for all of `lk`
#   through the uncorrelated `(SELECT count(*) FROM lk)`, an init plan run before their first row.
# - `ins`: objects the fold found absent; another writer may have created them since: then nothing.
# - `upd`: the compare-and-set, only over the very row the fold started from (its revision), and never
#   backwards. Under READ COMMITTED a row changed since the statement began is re-checked in its newest
#   version, so a concurrent writer's update makes this one fail rather than be overwritten.
# - `dl`: dead letters, once per fingerprint.
# The final SELECT returns the conflicts with SQLite's meaning: writes not written whose object does not, as
# of the statement's snapshot, already hold exactly the write's event, state and provenance. NOT IN rather than
# NOT EXISTS: the planner estimates one row for a CTE's RETURNING, and with NOT EXISTS picks a nested loop
# that rescans it per write (measured 3 s for 5000 writes); NOT IN over a small estimate is a hashed subplan.
_COMMIT = """
WITH w AS MATERIALIZED (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
                         $8::text[], $9::text[], $10::int8[], $11::int8[])
        AS t(source, object, event_type, event_id, sequencer, etag, state, updated_at, provenance, revision,
             exp_rev)
),
lk AS MATERIALIZED (
    SELECT 1 FROM projection p JOIN w ON p.source = w.source AND p.object = w.object
    ORDER BY p.source, p.object
    FOR NO KEY UPDATE OF p
),
ins AS (
    INSERT INTO projection AS p (source, object, event_type, event_id, sequencer, etag, state, updated_at,
                                 provenance, revision)
    SELECT source, object, event_type, event_id, sequencer, etag, state::jsonb, updated_at, provenance::jsonb,
           revision FROM w
    WHERE exp_rev IS NULL AND (SELECT count(*) FROM lk) >= 0
    ORDER BY source COLLATE "C", object COLLATE "C"
    ON CONFLICT (source, object) DO NOTHING
    RETURNING p.source, p.object
),
upd AS (
    UPDATE projection AS p
    SET event_type = w.event_type, event_id = w.event_id, sequencer = w.sequencer, etag = w.etag,
        state = w.state::jsonb, updated_at = w.updated_at, provenance = w.provenance::jsonb, revision = w.revision
    FROM w
    WHERE w.exp_rev IS NOT NULL AND (SELECT count(*) FROM lk) >= 0
      AND p.source = w.source AND p.object = w.object AND p.revision = w.exp_rev
      AND (p.sequencer, p.event_id) <= (w.sequencer COLLATE "C", w.event_id COLLATE "C")
    RETURNING p.source, p.object
),
dl AS (
    INSERT INTO dead_letters (fingerprint, received_at, origin, reason, event_id, body, body_size)
    SELECT d.fingerprint, $12, d.origin, d.reason, d.event_id, d.body, d.body_size
    FROM unnest($13::text[], $14::text[], $15::text[], $16::text[], $17::bytea[], $18::int4[])
        AS d(fingerprint, origin, reason, event_id, body, body_size)
    WHERE (SELECT count(*) FROM lk) >= 0
    ORDER BY d.fingerprint COLLATE "C"
    ON CONFLICT (fingerprint) DO NOTHING
)
SELECT w.source, w.object FROM w
WHERE (w.source, w.object) NOT IN (SELECT source, object FROM ins)
  AND (w.source, w.object) NOT IN (SELECT source, object FROM upd)
  AND NOT EXISTS (SELECT 1 FROM projection p WHERE p.source = w.source AND p.object = w.object
                  AND p.sequencer = w.sequencer AND p.event_id = w.event_id AND p.state = w.state::jsonb
                  AND p.provenance IS NOT DISTINCT FROM w.provenance::jsonb)
"""
_LOAD = f"""
SELECT {", ".join("p." + c for c in _COLUMNS.split(", "))}
FROM unnest($1::text[], $2::text[]) AS k(source, object)
JOIN projection p ON p.source = k.source AND p.object = k.object
"""
_DEAD_LETTERS = (
    "SELECT id, received_at, origin, reason, event_id, body, body_size FROM dead_letters "
    "WHERE id > $1 ORDER BY id LIMIT $2"
)
_DEAD_LETTERS_NEWEST = _DEAD_LETTERS.replace("ORDER BY id", "ORDER BY id DESC")
_RECENT = f"SELECT {_COLUMNS} FROM projection ORDER BY updated_at DESC, source, object LIMIT $1"
_COUNTS = "SELECT (SELECT count(*) FROM projection), (SELECT count(*) FROM dead_letters)"
# A deadlock is still possible in one narrow case (an object created by another writer after this
# statement's snapshot, while that writer waits on a row this one locked); PostgreSQL breaks it by failing
# one statement, which is then simply run again: it is a whole transaction.
_DEADLOCK_RETRIES = 5

# Errors of the connection or the server, as opposed to mistakes in this module.
_STORE_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, asyncio.TimeoutError)


def _redact(url: str) -> str:
    """The URL without its password (in the authority or as a query parameter), for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{hostport}" if ":" in userinfo else f"{user}@{hostport}"
    query = "&".join(
        f"{k}=***" if k.lower() in ("password", "sslpassword") else (f"{k}={v}" if v else k)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))


class PostgresStore(ProjectionStore):
    def __init__(
        self,
        url: str,
        min_size: int = 1,
        max_size: int = 4,
        connect_timeout: float = 10.0,
        command_timeout: float | None = 120.0,
    ):
        if not is_postgres_url(url):
            raise ValueError(f"bad PostgreSQL URL {_redact(url)!r}: expected postgresql://user@host:port/database")
        self.url = url
        self._where = _redact(url)
        try:
            urlsplit(url).port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError as exc:
            raise ValueError(f"bad PostgreSQL URL {self._where!r}: {exc}") from exc
        self._min_size = min_size
        self._max_size = max_size
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._pool: asyncpg.Pool | None = None
        self._watch = HeadWatch(lambda: self._run("head", lambda c: c.fetchval(postgres_feed.HEAD)), POLL_INTERVAL)
        self._listener = postgres_feed.Listener(url, self._watch.saw, connect_timeout)
        self._prunes = PruneSchedule()

    # -- plumbing -----------------------------------------------------------------------------------------

    def _error(self, exc: BaseException, doing: str) -> StoreError:
        detail = f"{type(exc).__name__}: {exc}".rstrip(": ")
        return StoreError(f"postgres store {self._where}: {doing} failed: {detail}")

    async def _run(self, doing: str, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        pool = self._pool
        if pool is None:
            raise StoreError(f"postgres store {self._where}: {doing} failed: store is not open")
        try:
            async with pool.acquire(timeout=self._connect_timeout) as conn:
                return await fn(conn)
        except _STORE_ERRORS as exc:
            raise self._error(exc, doing) from exc

    # -- lifecycle ----------------------------------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            return
        try:
            pool = await asyncpg.create_pool(
                self.url,
                min_size=self._min_size,
                max_size=self._max_size,
                timeout=self._connect_timeout,
                command_timeout=self._command_timeout,
            )
        except _STORE_ERRORS as exc:
            raise self._error(exc, "connect") from exc
        except ValueError as exc:  # asyncpg's own URL parsing: a configuration mistake, not worth retrying
            raise ValueError(f"bad PostgreSQL URL {self._where!r}: {exc}") from exc
        try:
            async with pool.acquire(timeout=self._connect_timeout) as conn:
                await _migrate(conn)
        except BaseException as exc:
            pool.terminate()
            if isinstance(exc, _STORE_ERRORS):
                raise self._error(exc, "schema setup") from exc
            raise
        self._pool = pool

    async def close(self) -> None:
        await self._listener.close()
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await asyncio.wait_for(pool.close(), timeout=self._connect_timeout)
            except (TimeoutError, *_STORE_ERRORS):
                pool.terminate()

    # -- the interface ------------------------------------------------------------------------------------

    async def load(self, keys: Collection[ObjectKey]) -> dict[ObjectKey, Row]:
        if not keys:
            return {}
        sources = [_text(k[0]) for k in keys]
        objects = [_text(k[1]) for k in keys]
        records = await self._run("load", lambda c: c.fetch(_LOAD, sources, objects))
        rows = {(r[0], r[1]): _row(r) for r in records}
        for key in keys:  # keys holding NUL are stored with U+FFFD; the caller gets them under its own key
            if "\x00" in key[0] or "\x00" in key[1]:
                stored = rows.pop((_text(key[0]), _text(key[1])), None)
                if stored is not None:
                    rows[key] = stored
        return rows

    async def commit(self, writes: list[Write], dead_letters: list[DeadLetter]) -> set[ObjectKey]:
        if not writes and not dead_letters:
            return set()
        cols: list[list[Any]] = [[] for _ in range(11)]
        renamed: dict[ObjectKey, ObjectKey] = {}  # stored key -> the caller's, for keys holding NUL
        for w in writes:
            r = w.row
            values: tuple[str | None, ...] = (r.source, r.object, r.event_type, r.event_id, r.sequencer, r.etag)
            if any(v is not None and "\x00" in v for v in values):
                values = tuple(map(_text, values))
                renamed[(_text(r.source) or "", _text(r.object) or "")] = r.key
            for col, value in zip(
                cols,
                (
                    *values,
                    _json(r.state),
                    r.updated_at,
                    _json(r.provenance) if r.provenance else None,
                    r.revision,
                    w.expected,
                ),
            ):
                col.append(value)
        dl_cols: list[list[Any]] = [[] for _ in range(6)]
        for d in dead_letters:
            for col, dl_value in zip(
                dl_cols,
                (d.fingerprint, _text(d.origin), _text(d.reason), _text(d.event_id), bytes(d.body), d.body_size),
            ):
                col.append(dl_value)
        args = (*cols, utc_now(), *dl_cols)

        keep = self.history if any(w.events for w in writes) else None

        async def run(conn: asyncpg.Connection) -> list[asyncpg.Record]:
            for attempt in range(_DEADLOCK_RETRIES):
                try:
                    if keep is None:
                        return await conn.fetch(_COMMIT, *args)
                    # With the history, a transaction of two statements: the rows (and the feed) first, then the
                    # history of those written. The feed's counter stays locked for the second one too.
                    async with conn.transaction():
                        found = await conn.fetch(_COMMIT, *args)
                        failed = {renamed.get((r[0], r[1]), (r[0], r[1])) for r in found}
                        kept = [_history_text(r) for r in records(writes, failed)]
                        if kept:
                            await postgres_feed.record_history(conn, kept, keep.per_object)
                    return found
                except asyncpg.TransactionRollbackError:  # deadlock, or serialization under stricter isolation
                    if attempt == _DEADLOCK_RETRIES - 1:
                        raise
            raise AssertionError("unreachable")

        found = await self._run("commit", run)
        if self._prunes.due() and (not self.retention.unlimited or self.history is not None):
            try:
                _, more = await self.prune_changes(self.retention)
            except StoreError as exc:  # the commit stands; pruning is tried again later
                log.warning("pruning the change feed failed: %s", exc)
                more = False
            self._prunes.done(more)
        return {renamed.get((r[0], r[1]), (r[0], r[1])) for r in found}

    async def query(self, q: Query) -> list[Row]:
        return [_row(r) for r in await self._select("query", _COLUMNS, q)]

    async def keys(self, q: Query) -> list[ObjectKey]:
        return [(r[0], r[1]) for r in await self._select("keys", "source, object", q)]

    async def _select(self, what: str, columns: str, q: Query) -> list[Any]:
        where, params = _filters(q.source, q.prefix, q.object, q.event_type, q.state_equals)

        def param(value: Any) -> str:
            params.append(value)
            return f"${len(params)}"

        if q.after is not None:
            where.append(f"(source, object) > ({param(q.after[0])}, {param(q.after[1])})")
        sql = f"SELECT {columns} FROM projection"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY source, object LIMIT {param(q.limit)}"
        return list(await self._run(what, lambda c: c.fetch(sql, *params)))

    async def recent(self, limit: int) -> list[Row]:
        records = await self._run("recent", lambda c: c.fetch(_RECENT, limit))
        return [_row(r) for r in records]

    async def dead_letters(
        self, limit: int = 100, after_id: int | None = None, newest_first: bool = False
    ) -> list[dict[str, Any]]:
        sql = _DEAD_LETTERS_NEWEST if newest_first else _DEAD_LETTERS
        records = await self._run("dead letters", lambda c: c.fetch(sql, after_id or 0, limit))
        return [dead_letter_dict(*r) for r in records]

    async def counts(self) -> dict[str, int]:
        objects, dead = await self._run("counts", lambda c: c.fetchrow(_COUNTS))
        return {"objects": objects, "dead_letters": dead}

    async def ping(self) -> None:
        await self._run("ping", lambda c: c.fetchval("SELECT 1"))

    # -- the change feed ------------------------------------------------------------------------------------

    async def changes(self, q: ChangeQuery) -> ChangePage:
        where, params = _filters(q.source, q.prefix, None, q.event_type, q.state_equals)
        sql, args = postgres_feed.read_sql(q, where, params)
        records = await self._run("changes", lambda c: c.fetch(sql, *args))
        page = postgres_feed.page_from(records, q)
        self._watch.saw(page.head)
        return page

    async def wait_for_changes(self, after: int, timeout: float) -> int:
        if await self._listener.ensure():  # a commit before it listened would wake nobody: look once
            self._watch.saw(await self._run("head", lambda c: c.fetchval(postgres_feed.HEAD)))
        return await self._watch.wait(after, timeout)

    async def feed_cursor(self, name: str) -> int | None:
        value = await self._run(
            "feed cursor", lambda c: c.fetchval("SELECT value FROM meta WHERE key = $1", "cursor/" + name)
        )
        return None if value is None else int(value)

    async def save_feed_cursor(self, name: str, position: int) -> None:
        await self._run(
            "feed cursor",
            lambda c: c.execute(
                "INSERT INTO meta VALUES ($1, $2) ON CONFLICT (key) DO UPDATE "
                "SET value = greatest(meta.value::bigint, EXCLUDED.value::bigint)::text",
                "cursor/" + name,
                str(position),
            ),
        )

    async def prune_changes(self, retention: FeedRetention) -> tuple[int, bool]:
        pruned = await self._run("prune", lambda c: postgres_feed.prune(c, retention))
        if self.history is not None and self.history.max_age:
            age = self.history.max_age
            if await self._run("prune history", lambda c: postgres_feed.prune_history(c, age)) >= PRUNE_BATCH:
                pruned = (pruned[0], True)
        return pruned

    async def object_history(self, source: str, obj: str, limit: int = 100) -> list[HistoryEntry]:
        return await self._run(
            "history", lambda c: postgres_feed.read_history(c, _text(source.lower()) or "", _text(obj) or "", limit)
        )


async def _migrate(conn: asyncpg.Connection) -> None:
    # The transaction-scoped lock serialises replicas starting together: concurrent CREATE ... IF NOT EXISTS
    # of the same table can otherwise fail on the catalog's unique indexes.
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", *_SCHEMA_LOCK)
        await conn.execute(_SCHEMA + postgres_feed.SCHEMA)
        await conn.execute(
            "INSERT INTO meta VALUES ('schema_version', $1) ON CONFLICT (key) DO NOTHING", str(SCHEMA_VERSION)
        )
        version = await conn.fetchval("SELECT value FROM meta WHERE key = 'schema_version'")
        if int(version) > SCHEMA_VERSION:
            raise StoreError(f"schema version {version} is newer than this processor understands ({SCHEMA_VERSION})")
        # Later versions migrate here, from `version` up, still under the lock.
        if int(version) < 2:
            # Merge reducers: which event set each value, and a revision for the compare-and-set. A row from
            # before is one event's worth of state (no provenance) at revision 0.
            await conn.execute(
                "ALTER TABLE projection ADD COLUMN IF NOT EXISTS provenance JSONB, "
                "ADD COLUMN IF NOT EXISTS revision BIGINT NOT NULL DEFAULT 0"
            )
            await conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
        if int(version) < 3:
            await postgres_feed.migrate_to_3(conn)
        await postgres_feed.create_triggers(conn)


def _filters(
    source: str | None,
    prefix: str | None,
    obj: str | None,
    event_type: str | None,
    state_equals: tuple[tuple[str, str], ...],
) -> tuple[list[str], list[Any]]:
    """The WHERE terms of a `Query`'s or a `ChangeQuery`'s filters, their parameters numbered from $1."""
    where: list[str] = []
    params: list[Any] = []

    def param(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    if source is not None:
        where.append(f"source = {param(source.lower())}")
    if prefix:
        # A range instead of LIKE: object names may contain % and _, and the range walks the key.
        where.append(f"object >= {param(prefix)} AND object < {param(prefix + chr(0x10FFFF))}")
    if event_type is not None:
        where.append(f"event_type = {param(event_type)}")
    if obj is not None:
        where.append(f"object = {param(obj)}")
    for field, value in state_equals:
        where.append(f"state ->> {param(state_field(field))} = {param(value)}")
    return where, params


def _history_text(record: HistoryRecord) -> HistoryRecord:
    s, o, eid, etype, time, seq, outcome, partition, number = record
    return (_t(s), _t(o), _t(eid), _t(etype), _t(time), _t(seq), outcome, _text(partition), number)


def _t(value: str) -> str:
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


def _text(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL (SQLite can): it becomes U+FFFD rather than a write failing forever."""
    return value.replace("\x00", "\ufffd") if value is not None and "\x00" in value else value


# A JSON \u0000 escape (not an escaped backslash followed by "u0000"): jsonb refuses it.
_JSON_NUL = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")


def _json(state: dict) -> str:
    text = orjson.dumps(state)
    if b"\\u0000" in text:
        text = _JSON_NUL.sub(rb"\1\\ufffd", text)
    return text.decode()


def _row(r: asyncpg.Record) -> Row:
    return Row.from_record(r, orjson.loads(r[6]), orjson.loads(r[8]) if r[8] is not None else None)
