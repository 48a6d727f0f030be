"""The URL forms the stores accept: the SQLite path rule and the PostgreSQL schemes.

Pure string rules with no imports, so that `processor.config` checks a URL when the settings load by the very
rule the store (projection or checkpoint) later opens it with.

SQLite URLs are written as SQLAlchemy writes them: sqlite:///relative/path.sqlite, sqlite:////absolute/path.sqlite,
sqlite:///:memory:.
"""

from __future__ import annotations

SQLITE_URL_PREFIX = "sqlite:///"
POSTGRES_URL_PREFIXES = ("postgresql://", "postgres://")


def is_sqlite_url(url: str) -> bool:
    """Whether `url` is sqlite:/// followed by a path (relative, absolute or :memory:)."""
    return url.startswith(SQLITE_URL_PREFIX) and len(url) > len(SQLITE_URL_PREFIX)


def sqlite_path(url: str) -> str:
    """The file path of a SQLite URL, or ValueError naming the forms expected."""
    if not is_sqlite_url(url):
        raise ValueError(f"bad SQLite URL {url!r}: expected sqlite:///relative/path or sqlite:////absolute/path")
    return url[len(SQLITE_URL_PREFIX) :]


def is_postgres_url(url: str) -> bool:
    return url.startswith(POSTGRES_URL_PREFIXES)
