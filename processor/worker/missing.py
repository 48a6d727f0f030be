"""The hub or consumer group does not exist: since when, when to say so again, when to give up.

The service answers a missing hub or consumer group with not-found, and the SDK retries that every
load-balancing round, forever; a worker that only logs the first one looks healthy while it consumes nothing.
So: unready from the first, an ERROR every `report_every` seconds while it lasts, and after `timeout` seconds
`HubNotFound`, which ends `processor run` with exit 1 for the orchestrator to show. It is over when a batch
arrives, or when a partition has stayed open for `quiet` seconds without a not-found (someone created the
consumer group, and the hub is idle). Pure: time is passed in.
"""

from __future__ import annotations


class HubNotFound(RuntimeError):
    """The hub or consumer group stayed missing for longer than PROCESSOR_NOT_FOUND_TIMEOUT; the message is one
    line saying which and how to create it."""


class Missing:
    def __init__(self, timeout: float, quiet: float, report_every: float):
        self.timeout = timeout
        self.quiet = quiet
        self.report_every = report_every
        self.line: str | None = None  # what is missing and how to create it
        self.since: float | None = None
        self._reported_at: float | None = None
        self._open: dict[str, float] = {}  # partitions opened since, and when

    @property
    def active(self) -> bool:
        return self.since is not None

    def failed(self, line: str, partition: str | None, now: float) -> None:
        if self.since is None:
            self.since = now
        self.line = line
        if partition is not None:
            self._open.pop(partition, None)

    def opened(self, partition: str, now: float) -> None:
        self._open[partition] = now

    def closed(self, partition: str) -> None:
        self._open.pop(partition, None)

    def received(self) -> None:
        """A batch came: whatever was missing exists now."""
        self.since = self.line = self._reported_at = None

    def settled(self, now: float) -> bool:
        """A partition has stayed open long enough (the SDK's own retries of an attach take seconds) to say that
        what was missing exists now; clears the state when so."""
        if self.since is not None and any(now - t >= self.quiet for t in self._open.values()):
            self.received()
            return True
        return False

    def report_due(self, now: float) -> bool:
        if self.since is None or (self._reported_at is not None and now - self._reported_at < self.report_every):
            return False
        self._reported_at = now
        return True

    def remaining(self, now: float) -> float:
        return 0.0 if self.since is None else max(0.0, self.since + self.timeout - now)

    def check(self, now: float) -> None:
        if self.since is not None and now - self.since >= self.timeout:
            raise HubNotFound(self.line)
