"""What only the PostgreSQL store has: its URL forms, its collations, and losing its server under it."""

from __future__ import annotations

import secrets

import asyncpg
import pytest

from processor.core.model import Row, Write
from processor.stores.base import StoreError
from processor.stores.postgres import PostgresStore
from processor.stores.registry import open_store
from tests.stores.conftest import admin_execute, admin_url, create_database, drop_database, with_database


async def test_both_url_schemes_open_the_same_store(postgres_url):
    assert postgres_url.startswith("postgresql://")
    short = "postgres://" + postgres_url[len("postgresql://") :]
    for url in (postgres_url, short):
        store = open_store(url)
        assert isinstance(store, PostgresStore)
        await store.open()
        try:
            await store.ping()
        finally:
            await store.close()
    with pytest.raises(ValueError):
        PostgresStore("mysql://localhost/x")
    with pytest.raises(ValueError, match="bad PostgreSQL URL"):
        PostgresStore("postgresql://localhost:port/x")


async def test_compared_and_sorted_columns_use_code_point_collation(postgres_url):
    store = PostgresStore(postgres_url)
    await store.open()
    await store.close()
    conn = await asyncpg.connect(postgres_url)
    try:
        rows = await conn.fetch(
            "SELECT column_name, collation_name FROM information_schema.columns "
            "WHERE table_name = 'projection' AND data_type = 'text'"
        )
    finally:
        await conn.close()
    collations = {r[0]: r[1] for r in rows}
    for column in ("source", "object", "event_type", "event_id", "sequencer", "updated_at"):
        assert collations[column] == "C", collations


async def test_messages_never_show_the_password():
    store = PostgresStore("postgresql://someone:s3cr3t-pw@127.0.0.1:1/nothing")
    with pytest.raises(StoreError) as caught:
        await store.open()
    assert "s3cr3t-pw" not in str(caught.value)
    assert "someone:***@127.0.0.1:1" in str(caught.value)


async def test_losing_the_database_raises_store_error_and_the_store_recovers(postgres_url):
    name = f"processor_gone_{secrets.token_hex(4)}"
    await create_database(name)
    store = PostgresStore(with_database(admin_url(), name))
    row = Row("s", "o", "T", "e1", "1", None, {}, "2026-01-01T00:00:00Z")
    try:
        await store.open()
        await store.commit([Write(row, None)], [])
        await drop_database(name)  # terminates the pool's connections too
        for call in (store.ping(), store.load([row.key]), store.commit([Write(row, 1)], [])):
            with pytest.raises(StoreError, match=name):
                await call
        await create_database(name)  # back, but empty: connections come back, the tables do not
        await store.ping()
        with pytest.raises(StoreError, match="projection"):
            await store.load([row.key])
    finally:
        await store.close()
        await admin_execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
