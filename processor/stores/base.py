"""The projection store contract: `ProjectionStore`, its `Query`, its `StoreError`, and its data shapes.

A store keeps one row per (source, object) and the dead letters. Writes come in batches, one per touched
object, committed in one transaction; each is a compare-and-set on the row it replaces, so a replica that
folded from an old row can never move an object backwards: its write is refused and it folds again.

The data shapes live here, with the contract, because every store and every caller must agree on them: the
timestamp text rows carry (`utc_now`; `recent` orders by it, and the projector and file ingest stamp rows with
it), the field names a `Query` may compare (`state_field`), and the dict `dead_letters` returns
(`dead_letter_dict`). Choosing a store by URL is `processor.stores.registry`'s; this module imports no store.
The change feed's shapes are `processor.stores.feed`'s, the object history's `processor.stores.history`'s. May
import `processor.core` and those two.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from processor.core.model import DeadLetter, ObjectKey, Row, Write
from processor.stores.feed import ChangePage, ChangeQuery, FeedRetention
from processor.stores.history import HistoryEntry, HistoryRetention

EXPORT_PAGE = 5000  # rows per query while exporting


class StoreError(RuntimeError):
    """The store cannot be reached or written: the caller retries and never advances a checkpoint."""


@dataclass(frozen=True, slots=True)
class Query:
    """Rows matching every filter given, in (source, object) order."""

    source: str | None = None
    prefix: str | None = None
    event_type: str | None = None
    state_equals: tuple[tuple[str, str], ...] = ()  # top-level state field = text value, e.g. ("status", "Failed")
    after: ObjectKey | None = None  # keyset pagination on (source, object)
    limit: int = 100
    object: str | None = None  # exact name


class ProjectionStore(abc.ABC):
    url: str
    # How much of the change feed to keep; a writer prunes the rest now and then after its commits.
    retention: FeedRetention = FeedRetention()
    # Object history (processor.stores.history): off unless set.
    history: HistoryRetention | None = None

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and create or migrate the schema."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release the connection(s); the store is not used again."""

    @abc.abstractmethod
    async def load(self, keys: Collection[ObjectKey]) -> dict[ObjectKey, Row]:
        """The stored rows of these objects (missing ones are absent)."""

    @abc.abstractmethod
    async def commit(self, writes: list[Write], dead_letters: list[DeadLetter]) -> set[ObjectKey]:
        """Apply all in one transaction; returns the objects whose compare-and-set failed (not written).

        At most one write per object (the projector folds each object's events into one).
        """

    @abc.abstractmethod
    async def query(self, q: Query) -> list[Row]:
        """The first `q.limit` rows matching `q`, sorted by (source, object) in code-point order."""

    @abc.abstractmethod
    async def keys(self, q: Query) -> list[ObjectKey]:
        """The keys of `query(q)`'s rows, without reading their state (a directory's objects, say)."""

    @abc.abstractmethod
    async def recent(self, limit: int) -> list[Row]:
        """The most recently updated rows, newest first."""

    async def export(self) -> AsyncIterator[Row]:
        """Every row, sorted by (source, object) in code-point order (pages of `query`, keyset on the key)."""
        after: ObjectKey | None = None
        while True:
            page = await self.query(Query(after=after, limit=EXPORT_PAGE))
            for row in page:
                yield row
            if len(page) < EXPORT_PAGE:
                return
            after = page[-1].key

    @abc.abstractmethod
    async def dead_letters(
        self, limit: int = 100, after_id: int | None = None, newest_first: bool = False
    ) -> list[dict[str, Any]]:
        """Oldest first after `after_id` (to page through them all), or the newest `limit` (newest first)."""

    @abc.abstractmethod
    async def counts(self) -> dict[str, int]:
        """{'objects': n, 'dead_letters': m}"""

    # -- the change feed: every committed write of a row, at a position of one gap-free per-store sequence

    @abc.abstractmethod
    async def changes(self, q: ChangeQuery) -> ChangePage:
        """The first `q.limit` changes after position `q.after` matching `q`, from one snapshot. Raises
        FeedExpired when changes right after `q.after` were pruned, FeedAhead when it is beyond the newest."""

    @abc.abstractmethod
    async def wait_for_changes(self, after: int, timeout: float) -> int:
        """The feed's head once it passes `after` (a commit anywhere), or after `timeout` seconds."""

    @abc.abstractmethod
    async def feed_cursor(self, name: str) -> int | None:
        """The position a consumer of the feed named `name` saved (a webhook's last acknowledged), or None."""

    @abc.abstractmethod
    async def save_feed_cursor(self, name: str, position: int) -> None:
        """Save `name`'s position; it never moves back (a slower replica saving an older one changes nothing)."""

    @abc.abstractmethod
    async def prune_changes(self, retention: FeedRetention) -> tuple[int, bool]:
        """Delete up to a batch of the oldest changes `retention` no longer keeps; (pruned through, more left)."""

    @abc.abstractmethod
    async def object_history(self, source: str, obj: str, limit: int = 100) -> list[HistoryEntry]:
        """The object's kept events (when `history` is on), newest recorded first."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise StoreError when the store cannot answer."""

    async def __aenter__(self) -> ProjectionStore:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def utc_now() -> str:
    """Wall-clock time as the stores write it (updated_at, received_at)."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def state_field(field: str) -> str:
    """A top-level state field name that may be put into a JSON path or operator, or ValueError."""
    if not field.replace("_", "").isalnum():
        raise ValueError(f"state field must be a plain name, got {field!r}")
    return field


def dead_letter_dict(
    row_id: int, received_at: str, origin: str, reason: str, event_id: str | None, body: bytes, body_size: int
) -> dict[str, Any]:
    """One dead letter as `dead_letters` returns it: id (int), received_at (str, `utc_now`'s form), origin,
    reason (str), event_id (str | None), body (str: the stored bytes as UTF-8, undecodable ones escaped),
    body_size (int: of the whole body), truncated (bool: only the first bytes of the body were kept)."""
    return {
        "id": row_id,
        "received_at": received_at,
        "origin": origin,
        "reason": reason,
        "event_id": event_id,
        "body": bytes(body).decode("utf-8", "backslashreplace"),
        "body_size": body_size,
        "truncated": body_size > len(body),
    }
