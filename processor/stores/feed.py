"""The change feed's shapes and the parts both stores share: `Change`, `ChangeQuery`, `ChangePage`, the
`FeedExpired` and `FeedAhead` refusals, `FeedRetention`, `PruneSchedule` and `HeadWatch`.

Every committed write of a projection row is one change, at a position of a per-store sequence that grows by
one per change in commit order: no gaps, no reuse. The store writes a change in the transaction of its row (a
trigger), so a reader that has seen position p has seen every change up to p, and a change never exists without
its row or the other way round. Retention prunes the oldest; `pruned_through` says up to where, so that asking
for what was pruned is a refusal (`FeedExpired`), never a silent gap.

Imports the standard library only (time and asyncio: the schedule and the wake-ups are the stores' plumbing).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from processor.core.model import exported_state

PRUNE_BATCH = 5000  # changes deleted per prune at most: a commit that prunes is never held up long
PRUNE_INTERVAL = 5.0  # seconds between prunes of one writer
DEFAULT_MAX_CHANGES = 1_000_000
DEFAULT_MAX_AGE = 7 * 24 * 3600.0  # seconds: a week


@dataclass(frozen=True, slots=True)
class Change:
    """One committed write of an object's row: its position, the object, the winner event, the new state."""

    position: int
    source: str
    object: str
    event_type: str
    event_id: str
    sequencer: str
    etag: str | None
    state: dict[str, Any]
    updated_at: str
    revision: int  # the row's revision after this write: grows by one per write of the object
    committed_at: str  # the store's clock at the commit, `utc_now`'s form (SQLite: to the millisecond)

    def to_json(self, internal: bool = False) -> dict[str, Any]:
        """The exported form (`/api/changes`, `processor changes`), fields in their documented order; the
        state as `Row.to_json` exports it (without a reducer's bookkeeping, its `_` fields, unless `internal`)."""
        return {
            "position": self.position,
            "source": self.source,
            "object": self.object,
            "event_type": self.event_type,
            "event_id": self.event_id,
            "sequencer": self.sequencer,
            "etag": self.etag,
            "state": self.state if internal else exported_state(self.state),
            "revision": self.revision,
            "updated_at": self.updated_at,
            "committed_at": self.committed_at,
        }


@dataclass(frozen=True, slots=True)
class ChangeQuery:
    """Changes after `after` matching every filter given (the filters of `Query`), in position order."""

    after: int = 0
    limit: int = 100
    source: str | None = None
    prefix: str | None = None
    event_type: str | None = None
    state_equals: tuple[tuple[str, str], ...] = ()  # top-level field of the new state = text value


@dataclass(frozen=True, slots=True)
class ChangePage:
    """What one read of the feed saw, all from one snapshot of the store.

    `next` is where the following read starts: the last change returned when the page is full, else `head`
    (every change up to it was looked at, filtered ones included). `oldest` is the first position still kept.
    """

    changes: list[Change]
    next: int
    head: int
    oldest: int


class FeedExpired(Exception):
    """The changes right after the position asked for were pruned by retention: resume from `oldest`."""

    def __init__(self, after: int, oldest: int):
        super().__init__(
            f"changes after position {after} are no longer kept (retention): the oldest kept is {oldest}; "
            "start again from a fresh export and the feed's head, or accept the gap with after="
            f"{oldest - 1}"
        )
        self.after = after
        self.oldest = oldest


class FeedAhead(ValueError):
    """A position beyond the newest: not from this store (or from one since recreated)."""

    def __init__(self, after: int, head: int):
        super().__init__(f"position {after} is beyond the newest change ({head}): not a position of this store")
        self.after = after
        self.head = head


def check_position(after: int, head: int, pruned_through: int) -> None:
    """Raise what a read after `after` must refuse, given one snapshot's head and pruning mark."""
    if after < pruned_through:
        raise FeedExpired(after, pruned_through + 1)
    if after > head:
        raise FeedAhead(after, head)


def page_of(changes: list[Change], q: ChangeQuery, head: int, pruned_through: int) -> ChangePage:
    full = len(changes) >= q.limit
    return ChangePage(changes, changes[-1].position if full else head, head, pruned_through + 1)


@dataclass(frozen=True, slots=True)
class FeedRetention:
    """How much of the feed a store keeps: at most `max_changes` (0: no limit) and none older than
    `max_age` seconds (0: no limit). Defaults: a million changes, a week."""

    max_changes: int = DEFAULT_MAX_CHANGES
    max_age: float = DEFAULT_MAX_AGE

    @property
    def unlimited(self) -> bool:
        return not self.max_changes and not self.max_age


class PruneSchedule:
    """When a writer prunes next: every `interval` seconds, and again at once while a prune was cut short."""

    def __init__(self, interval: float = PRUNE_INTERVAL, clock: Callable[[], float] = time.monotonic):
        self._interval = interval
        self._clock = clock
        self._next = clock()  # the first commit prunes: a store reopened after a long pause catches up

    def due(self) -> bool:
        return self._clock() >= self._next

    def done(self, more_left: bool) -> None:
        self._next = self._clock() + (0.0 if more_left else self._interval)


class HeadWatch:
    """The newest position a store knows of, and waiting for it to pass a position.

    Heads come from the store's own commits and reads (`saw`), from PostgreSQL notifications, and from a poll
    (`read_head`) every `poll` seconds while anyone waits: concurrent waiters share one poll.
    """

    def __init__(self, read_head: Callable[[], Awaitable[int]], poll: float):
        self.head = 0
        self._read_head = read_head
        self._poll = poll
        self._moved = asyncio.Event()
        self._polling: asyncio.Task[int] | None = None

    def saw(self, head: int) -> None:
        if head > self.head:
            self.head = head
            self._moved.set()
            self._moved = asyncio.Event()

    async def wait(self, after: int, timeout: float) -> int:
        """The head once it is beyond `after`, or whatever it is after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.head <= after:
            left = deadline - loop.time()
            if left <= 0:
                break
            moved = self._moved
            try:
                await asyncio.wait_for(moved.wait(), min(self._poll, left))
            except TimeoutError:
                self.saw(await self._poll_once())
        return self.head

    async def _poll_once(self) -> int:
        if self._polling is None or self._polling.done():
            self._polling = asyncio.ensure_future(self._read_head())
        # shield: one waiter's cancellation (a client gone) must not cancel the poll the others await.
        return await asyncio.shield(self._polling)
