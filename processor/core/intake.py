"""Intake: one message body -> the events that may be projected, plus dead letters and tallies.

Order of checks, each counted under its own outcome: decode (dead-lettered when impossible), the source
allow-list (rejected), the catalog (ignored when the type is unknown), and what the type needs to name its
object and order (dead-lettered when missing).
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable

from processor.core.model import Admitted, DeadLetter, Tally
from processor.events.catalog import Catalog
from processor.events.envelope import DecodeLimits, Malformed, decode_body

# Event Grid marks its own control messages in this application property; they are not events of ours.
_NOT_NOTIFICATIONS = frozenset({"SubscriptionValidation", "SubscriptionDeletion"})


def normalize_source(source: str) -> str:
    # ARM resource ids are case-insensitive; a trailing slash is noise.
    return source.strip().rstrip("/").lower()


class Intake:
    def __init__(self, catalog: Catalog, allowed_sources: Iterable[str] = (), limits: DecodeLimits = DecodeLimits(),
                 keep_body_bytes: int = 4096):
        self.catalog = catalog
        self.allowed = frozenset(normalize_source(s) for s in allowed_sources if s.strip())
        self.limits = limits
        self.keep_body_bytes = keep_body_bytes
        self._sources: dict[str, str] = {}  # as sent -> normalised; few distinct sources, many events

    def admit(self, body: bytes, tally: Tally, origin: Any = None, label: str = "",
              delivery_kind: str | None = None) -> tuple[list[Admitted], list[DeadLetter]]:
        if delivery_kind in _NOT_NOTIFICATIONS:
            tally.read += 1
            tally.add("ignored", delivery_kind)
            return [], []
        decoded = decode_body(body, self.limits)
        tally.read += len(decoded.events) + len(decoded.malformed)
        dead = [self._dead(m, body, label) for m in decoded.malformed]
        for m in decoded.malformed:
            tally.add("dead_lettered", "-")
        admitted: list[Admitted] = []
        if not decoded.events:
            return admitted, dead
        size = max(1, len(body) // len(decoded.events))
        catalog, allowed, sources = self.catalog, self.allowed, self._sources
        for event in decoded.events:
            source = sources.get(event.source)
            if source is None:
                if len(sources) > 10_000:
                    sources.clear()
                source = sources[event.source] = normalize_source(event.source)
            if allowed and source not in allowed:
                tally.add("rejected", event.type)
                continue
            entry = catalog.by_type.get(event.type)
            if entry is None:
                tally.add("ignored", event.type)
                continue
            ident = catalog.identify(event, entry)
            if isinstance(ident, Malformed):
                dead.append(self._dead(ident, body, label))
                tally.add("dead_lettered", event.type)
                continue
            obj, sequencer, etag, time = ident
            admitted.append(Admitted((source, obj), sequencer, etag, time, event, entry.reducer, size, origin))
        return admitted, dead

    def _dead(self, malformed: Malformed, body: bytes, label: str) -> DeadLetter:
        digest = hashlib.sha256(body)
        digest.update(malformed.reason.encode())
        return DeadLetter(malformed.reason, body[: self.keep_body_bytes], len(body), label, malformed.event_id,
                          digest.hexdigest())
