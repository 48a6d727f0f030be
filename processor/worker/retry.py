"""Retrying what fails for a while (a store commit, a checkpoint write, receiving): the backoff between
attempts, and `Streak`, which logs a run of failures once, and its recovery, instead of every retry.

Imports nothing of the project's.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


def backoff(attempt: int, base: float = 0.2, cap: float = 10.0) -> float:
    """Seconds to wait before retry number `attempt` (1, 2, ...): doubling from `base`, at most `cap`."""
    return min(cap, base * (2 ** min(attempt, 10)))


class Streak:
    """Logs the first failure of a run of failures and the recovery, not every retry in between."""

    def __init__(self, what: str):
        self.what = what
        self.failures = 0  # in the current run; 0 when the last attempt succeeded
        self.since: float | None = None

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        if self.failures == 1:
            self.since = time.monotonic()
            log.error("%s failed, retrying with backoff until it recovers: %s", self.what, exc)

    def succeeded(self) -> None:
        if self.failures:
            log.warning(
                "%s recovered after %d failed attempts over %.1fs",
                self.what,
                self.failures,
                time.monotonic() - (self.since or time.monotonic()),
            )
        self.failures = 0
        self.since = None
