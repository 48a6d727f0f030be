"""Fault injection: make the hub misbehave the way the real service sometimes does.

Each fault acts on live connections and links at the moment it is called; the SDK then sees what
it would see from Azure (a dropped socket, a detach with a service error, a stalled partition).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .server import DevHub


class Faults:
    def __init__(self, devhub: DevHub) -> None:
        self._hub = devhub

    def drop_connections(self) -> int:
        """Cut every client TCP connection without an AMQP close (a network failure)."""
        connections = list(self._hub._connections)
        for conn in connections:
            conn.abort()
        return len(connections)

    def detach_links(
        self,
        error: str = "com.microsoft:server-busy",
        hub: str | None = None,
        partition: str | None = None,
        description: str | None = None,
    ) -> int:
        """Detach producer and consumer links with an AMQP error condition.

        `hub` / `partition` narrow the blast radius; a producer link not bound to a partition
        matches only when `partition` is None. `com.microsoft:server-busy` and
        `com.microsoft:timeout` are retried by the SDK; `amqp:not-found` and the like are not.
        """
        text = description or f"DevHub fault injection: {error}"
        links = [link for link in self._hub._links() if _matches(link, hub, partition)]
        for link in links:
            link.detach(error, text)
        return len(links)

    def pause_partition(self, hub: str, partition: str) -> None:
        """Stop deliveries from a partition (sends are still accepted and stored)."""
        self._hub.log_of(hub, partition).paused = True

    def resume_partition(self, hub: str, partition: str) -> None:
        plog = self._hub.log_of(hub, partition)
        plog.paused = False
        for reader in list(plog.readers):
            reader.pump()

    def slow_partition(self, hub: str, partition: str, delay_seconds: float) -> None:
        """Let each reader of the partition receive at most one batch per `delay_seconds` (0 = normal)."""
        if delay_seconds < 0:
            raise ValueError("delay_seconds must be >= 0")
        self._hub.log_of(hub, partition).delay = float(delay_seconds)


def _matches(link, hub: str | None, partition: str | None) -> bool:
    if hub is not None and (link.hub_name or "").lower() != hub.lower():
        return False
    if partition is not None and link.partition != str(partition):
        return False
    return True
