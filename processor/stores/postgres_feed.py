"""The PostgreSQL store's change feed: its tables, the trigger that fills them, reading, pruning, the migration,
and the LISTEN connection that wakes waiters.

Positions come from a one-row counter (`feed.head`), not a sequence. A sequence hands out numbers at once and
never takes them back: a rolled-back transaction leaves a gap, and of two concurrent transactions the one with
the smaller number may commit last, so a reader that has seen 8 could still see 7 appear later and a consumer
resuming after 8 would miss it. Updating the counter row instead locks it until commit: committers queue on
it, each takes the numbers after the last committed one, and a rollback gives its numbers back. The update is
made by a statement-level AFTER trigger, at the end of the commit's one statement, when the statement already
holds every row lock it needs: the counter is held only for the commit itself, and a transaction holding it
never waits for anything else (no deadlock). Cost: commits of several replicas no longer overlap their WAL
flushes (see bench/change_feed.py).

Each commit also sends NOTIFY processor_changes with the new head; `Listener` receives it for waiters.
Imports asyncpg and `processor.stores.feed`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import asyncpg
import orjson

from processor.stores.feed import PRUNE_BATCH, Change, ChangePage, ChangeQuery, FeedRetention, check_position, page_of
from processor.stores.history import HistoryEntry, HistoryRecord

log = logging.getLogger(__name__)

CHANNEL = "processor_changes"
SCHEMA = """
CREATE TABLE IF NOT EXISTS changes (
    position BIGINT PRIMARY KEY,
    source TEXT COLLATE "C" NOT NULL,
    object TEXT COLLATE "C" NOT NULL,
    event_type TEXT COLLATE "C" NOT NULL,
    event_id TEXT COLLATE "C" NOT NULL,
    sequencer TEXT COLLATE "C" NOT NULL,
    etag TEXT,
    state JSONB NOT NULL,
    updated_at TEXT COLLATE "C" NOT NULL,
    revision BIGINT NOT NULL,
    committed_at TEXT COLLATE "C" NOT NULL
);
CREATE TABLE IF NOT EXISTS history (
    id BIGSERIAL PRIMARY KEY,
    source TEXT COLLATE "C" NOT NULL,
    object TEXT COLLATE "C" NOT NULL,
    event_id TEXT COLLATE "C" NOT NULL,
    event_type TEXT NOT NULL,
    time TEXT NOT NULL,
    sequencer TEXT COLLATE "C" NOT NULL,
    outcome TEXT NOT NULL,
    partition TEXT,
    sequence_number BIGINT,
    recorded_at TEXT COLLATE "C" NOT NULL,
    UNIQUE (source, object, event_id)
);
CREATE TABLE IF NOT EXISTS feed (id INT PRIMARY KEY CHECK (id = 1), head BIGINT NOT NULL);
INSERT INTO feed VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
"""
_COLUMNS = "source, object, event_type, event_id, sequencer, etag, state, updated_at, revision"
_NOW = """to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""
# Statement-level: one counter update per commit whatever its size. `written` holds the statement's new rows
# (an INSERT that did nothing and a failed compare-and-set hold none).
# An UPDATE that changes neither the state nor the object's event (a storage container's row, written by every
# batch beneath it so that two writers cannot both commit: only its revision moves) is no change.
_CHANGED = " OR ".join(
    f"w.{c} IS DISTINCT FROM b.{c}" for c in ("state", "event_id", "sequencer", "event_type", "etag")
)
_ROWS = {
    "insert": "SELECT * FROM written",
    "update": f"SELECT w.* FROM written w JOIN before b USING (source, object) WHERE {_CHANGED}",
}
_FUNCTION = "".join(
    f"""
CREATE OR REPLACE FUNCTION processor_feed_{what}() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
    n bigint;
    last bigint;
BEGIN
    SELECT count(*) INTO n FROM ({rows}) r;
    IF n > 0 THEN
        UPDATE feed SET head = head + n WHERE id = 1 RETURNING head INTO last;
        INSERT INTO changes (position, {_COLUMNS}, committed_at)
        SELECT last - n + row_number() OVER (ORDER BY source, object), {_COLUMNS}, {_NOW} FROM ({rows}) r;
        PERFORM pg_notify('{CHANNEL}', last::text);
    END IF;
    RETURN NULL;
END
$fn$;
"""
    for what, rows in _ROWS.items()
)
_TRIGGERS = [
    f"CREATE OR REPLACE TRIGGER feed_on_{what} AFTER {what.upper()} ON projection "
    f"REFERENCING {'OLD TABLE AS before ' if what == 'update' else ''}NEW TABLE AS written "
    f"FOR EACH STATEMENT EXECUTE FUNCTION processor_feed_{what}()"
    for what in ("insert", "update")
]
HEAD = "SELECT head FROM feed WHERE id = 1"
_MARKS = (
    "SELECT (SELECT head FROM feed WHERE id = 1), "
    "coalesce((SELECT value::bigint FROM meta WHERE key = 'feed_pruned_through'), 0)"
)


async def create_triggers(conn: asyncpg.Connection) -> None:
    """The function and triggers, unless there (replacing a trigger locks the projection against writers)."""
    present = await conn.fetchval(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'projection'::regclass "
        "AND tgname IN ('feed_on_insert', 'feed_on_update')"
    )
    if present < len(_TRIGGERS):
        await conn.execute(_FUNCTION)
        for trigger in _TRIGGERS:
            await conn.execute(trigger)


async def migrate_to_3(conn: asyncpg.Connection) -> None:
    """The change feed (in the caller's transaction, under its lock). Its first changes are the rows already
    stored, one each in (source, object) order, so that replaying the feed from its start gives the projection."""
    await conn.execute(
        f"INSERT INTO changes (position, {_COLUMNS}, committed_at) "
        f"SELECT row_number() OVER (ORDER BY source, object), {_COLUMNS}, {_NOW} FROM projection"
    )
    await conn.execute("UPDATE feed SET head = (SELECT count(*) FROM changes) WHERE id = 1")
    await create_triggers(conn)
    await conn.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")


def read_sql(q: ChangeQuery, where: list[str], params: list[object]) -> tuple[str, list[object]]:
    """One statement, so one snapshot: the head and the pruning mark on every row (or on one row of NULLs when
    no change matches). `where` and `params` are the filters, numbered from $1."""
    n = len(params)
    terms = "".join(" AND " + w for w in where)
    sql = (
        f"WITH m AS (SELECT (SELECT head FROM feed WHERE id = 1) AS head, "
        f"coalesce((SELECT value::bigint FROM meta WHERE key = 'feed_pruned_through'), 0) AS pruned) "
        f"SELECT m.head, m.pruned, c.* FROM m LEFT JOIN LATERAL ("
        f"SELECT position, {_COLUMNS}, committed_at FROM changes WHERE position > ${n + 1}{terms} "
        f"ORDER BY position LIMIT ${n + 2}) c ON true"
    )
    return sql, [*params, q.after, q.limit]


def page_from(records: list[asyncpg.Record], q: ChangeQuery) -> ChangePage:
    head, pruned = records[0][0], records[0][1]
    check_position(q.after, head, pruned)
    changes = [
        Change(r[2], r[3], r[4], r[5], r[6], r[7], r[8], orjson.loads(r[9]), r[10], r[11], r[12])
        for r in records
        if r[2] is not None
    ]
    return page_of(changes, q, head, pruned)


async def prune(conn: asyncpg.Connection, retention: FeedRetention) -> tuple[int, bool]:
    """Delete at most a batch of what `retention` no longer keeps: (pruned through, more left). Replicas may
    prune at once: deleting twice is harmless and the mark only grows."""
    async with conn.transaction():
        head, pruned = await conn.fetchrow(_MARKS)
        window = min(head, pruned + PRUNE_BATCH)
        cut = pruned
        if retention.max_changes:
            cut = max(cut, head - retention.max_changes)
        if retention.max_age:
            # The first change young enough to keep, within the window: every one before it is older.
            young = await conn.fetchval(
                "SELECT min(position) FROM changes WHERE position > $1 AND position <= $2 AND committed_at >= "
                """to_char((now() - make_interval(secs => $3)) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')""",
                pruned,
                window,
                float(retention.max_age),
            )
            cut = max(cut, window if young is None else young - 1)
        target = min(cut, window)
        if target > pruned:
            await conn.execute("DELETE FROM changes WHERE position <= $1", target)
            await conn.execute(
                "INSERT INTO meta VALUES ('feed_pruned_through', $1) ON CONFLICT (key) DO UPDATE "
                "SET value = greatest(meta.value::bigint, EXCLUDED.value::bigint)::text",
                str(target),
            )
    return max(target, pruned), cut > target


async def record_history(conn: asyncpg.Connection, recs: list[HistoryRecord], per_object: int) -> None:
    """Keep `recs` (in the caller's transaction), then trim each of their objects to its newest `per_object`."""
    columns = list(zip(*recs))
    await conn.execute(
        "INSERT INTO history (source, object, event_id, event_type, time, sequencer, outcome, partition, "
        f"sequence_number, recorded_at) SELECT *, {_NOW} FROM unnest($1::text[], $2::text[], $3::text[], "
        "$4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::int8[]) "
        "ON CONFLICT (source, object, event_id) DO NOTHING",
        *(list(c) for c in columns),
    )
    keys = list(dict.fromkeys((r[0], r[1]) for r in recs))
    await conn.execute(
        "DELETE FROM history h USING unnest($1::text[], $2::text[]) AS k(source, object) "
        "WHERE h.source = k.source AND h.object = k.object AND h.id <= (SELECT x.id FROM history x "
        "WHERE x.source = k.source AND x.object = k.object ORDER BY x.id DESC OFFSET $3 LIMIT 1)",
        [k[0] for k in keys],
        [k[1] for k in keys],
        per_object,
    )


async def read_history(conn: asyncpg.Connection, source: str, obj: str, limit: int) -> list[HistoryEntry]:
    """The object's kept events, newest recorded first."""
    rows = await conn.fetch(
        "SELECT event_id, event_type, time, sequencer, outcome, partition, sequence_number, recorded_at "
        "FROM history WHERE source = $1 AND object = $2 ORDER BY id DESC LIMIT $3",
        source,
        obj,
        limit,
    )
    return [HistoryEntry(*r) for r in rows]


async def prune_history(conn: asyncpg.Connection, max_age: float) -> int:
    """Delete at most a batch of the oldest kept events older than `max_age` seconds; how many."""
    done = await conn.execute(
        "DELETE FROM history WHERE id IN (SELECT id FROM history ORDER BY id LIMIT $1) AND recorded_at < "
        """to_char((now() - make_interval(secs => $2)) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')""",
        PRUNE_BATCH,
        float(max_age),
    )
    return int(done.split()[-1])


class Listener:
    """A connection of its own that LISTENs for commits and hands each new head to `saw`; reopened by the next
    `ensure` when it is lost (waiters poll meanwhile)."""

    def __init__(self, url: str, saw: Callable[[int], None], timeout: float):
        self._url = url
        self._saw = saw
        self._timeout = timeout
        self._conn: asyncpg.Connection | None = None

    async def ensure(self) -> bool:
        """Whether it listens (a new connection included): the caller reads the head once after a new one."""
        if self._conn is not None and not self._conn.is_closed():
            return False
        try:
            conn = await asyncpg.connect(self._url, timeout=self._timeout)
            await conn.add_listener(CHANNEL, self._notified)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.debug("cannot listen for changes (polling instead): %s", exc)
            return False
        self._conn = conn
        return True

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        if payload.isdigit():
            self._saw(int(payload))

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.terminate()
