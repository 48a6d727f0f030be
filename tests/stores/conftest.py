"""Fixtures for the store contract: the same tests run against SQLite (a temporary file) and PostgreSQL (a
database created for the test session, dropped at its end, with empty tables for every test).

PostgreSQL comes from PROCESSOR_TEST_POSTGRES_URL (a maintenance database the tests may CREATE DATABASE
from), default postgresql://postgres@127.0.0.1:5432/postgres. When it cannot be reached the PostgreSQL
tests fail, they never skip.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from processor.stores.base import ProjectionStore
from processor.stores.registry import open_store

URL_ENV = "PROCESSOR_TEST_POSTGRES_URL"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
HOW_TO_START = (
    "Start PostgreSQL, e.g. on Debian/Ubuntu:\n"
    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n"
    "or with Docker: docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:16\n"
    f"or point {URL_ENV} at a server where this user may CREATE DATABASE."
)
_CONNECT_ERRORS = (OSError, asyncio.TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


def admin_url() -> str:
    return os.environ.get(URL_ENV, DEFAULT_URL)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def run_aside(make: Callable[[], Awaitable[Any]]) -> Any:
    """Run a coroutine to completion on its own loop in another thread (sync fixtures, test-loop agnostic)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, make()).result()


async def admin_execute(*statements: str) -> None:
    conn = await asyncpg.connect(admin_url(), timeout=10)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


async def create_database(name: str) -> None:
    """A database whose default collation is linguistic (ICU en-US) where the server can, so that a store
    column missing COLLATE "C" shows up as a wrong order rather than passing by luck."""
    try:
        await admin_execute(
            f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
        )
    except asyncpg.PostgresError:
        await admin_execute(f"CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8'")


async def drop_database(name: str) -> None:
    await admin_execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextmanager
def fresh_database(prefix: str) -> Iterator[str]:
    """A new PostgreSQL database, dropped afterwards: its URL (fails the test, never skips, without a server)."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    try:
        run_aside(lambda: create_database(name))
    except _CONNECT_ERRORS as exc:
        pytest.fail(f"PostgreSQL at {admin_url()} is unreachable: {exc}\n{HOW_TO_START}", pytrace=False)
    try:
        yield with_database(admin_url(), name)
    finally:
        run_aside(lambda: drop_database(name))


@pytest.fixture(scope="session")
def postgres_url():
    name = f"processor_test_{secrets.token_hex(5)}"
    try:
        run_aside(lambda: create_database(name))
    except _CONNECT_ERRORS as exc:
        pytest.fail(
            f"PostgreSQL at {admin_url()} is unreachable or refused CREATE DATABASE: "
            f"{type(exc).__name__}: {exc}\n{HOW_TO_START}",
            pytrace=False,
        )
    try:
        yield with_database(admin_url(), name)
    finally:
        run_aside(lambda: drop_database(name))


@dataclass
class Backend:
    kind: str  # "sqlite" or "postgres"
    url: str
    path: str = ""  # SQLite's file

    def new_store(self) -> ProjectionStore:
        return open_store(self.url)

    async def sql(self, statement: str) -> list[tuple]:
        """Run one statement outside any store (schema surgery, checks)."""
        if self.kind == "sqlite":

            def run() -> list[tuple]:
                db = sqlite3.connect(self.path, timeout=30)
                try:
                    rows = db.execute(statement).fetchall()
                    db.commit()
                    return rows
                finally:
                    db.close()

            return await asyncio.to_thread(run)
        conn = await asyncpg.connect(self.url, timeout=10)
        try:
            return [tuple(r) for r in await conn.fetch(statement)]
        finally:
            await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def backend(request, tmp_path) -> Backend:
    if request.param == "sqlite":
        path = str(tmp_path / "projection.sqlite")
        return Backend("sqlite", f"sqlite:///{path}", path)
    b = Backend("postgres", request.getfixturevalue("postgres_url"))
    # Every test starts from nothing: the store's open() creates the schema again.
    await b.sql("DROP TABLE IF EXISTS projection, dead_letters, meta, changes, feed, history")
    return b


@pytest.fixture
async def store(backend):
    s = backend.new_store()
    await s.open()
    try:
        yield s
    finally:
        await s.close()
