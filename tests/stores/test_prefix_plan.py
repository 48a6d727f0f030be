"""The objects beneath a directory (a storage namespace's recursive delete or rename) are read as a range of
the primary key, never by a scan of the table: checked in each store's own query plan."""

from __future__ import annotations

# The query `processor.projector.keys_beneath` makes through `ProjectionStore.query(Query(source, prefix))`.
RANGE = "SELECT object FROM projection WHERE source = {} AND object >= {} AND object < {} ORDER BY source, object"


async def test_a_directory_is_read_through_the_primary_key(backend, store):
    if backend.kind == "sqlite":
        rows = await backend.sql("EXPLAIN QUERY PLAN " + RANGE.format("'s'", "'d/'", "'d0'"))
        plan = " ".join(str(r[-1]) for r in rows)
        # SEARCH: a range of the index (SCAN, even USING the index, would read all of it)
        assert plan.startswith("SEARCH projection USING") and "object>? AND object<?" in plan, plan
    else:
        # A new table is tiny, so the planner would scan it: ask whether an index path exists at all.
        rows = await _postgres_plan(backend)
        plan = " ".join(str(r[0]) for r in rows)
        assert "projection_pkey" in plan and "Index Cond: ((source = " in plan and "object >=" in plan, plan


async def _postgres_plan(backend):
    import asyncpg

    conn = await asyncpg.connect(backend.url, timeout=10)
    try:
        await conn.execute("SET enable_seqscan = off")
        return await conn.fetch("EXPLAIN " + RANGE.format("'s'", "'d/'", "'d0'"))
    finally:
        await conn.close()
