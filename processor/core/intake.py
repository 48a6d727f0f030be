"""Intake: one message body -> the events that may be projected, plus dead letters and tallies.

Order of checks, each counted under its own outcome: decode (dead-lettered when impossible), the source
allow-list (rejected), the catalog (ignored when the type is unknown), and what the type needs to name its
object and order (dead-lettered when missing).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from processor.core.model import Admitted, DeadLetter, Origin, Tally
from processor.core.reducers import reducer_table
from processor.events.catalog import Catalog
from processor.events.envelope import DecodeLimits, Malformed, decode_body

# Event Grid marks its own control messages in this application property; they are not events of ours.
_NOT_NOTIFICATIONS = frozenset({"SubscriptionValidation", "SubscriptionDeletion"})
# Identity fields longer than this are not from Azure (ARM ids and blob subjects stay well under it); capping
# them keeps every per-event step, caches included, bounded whatever a hostile producer sends.
MAX_FIELD = 2048
MAX_REASON = 500
# (source, object) is the stores' primary key; PostgreSQL cannot index a key row over 2704 bytes. Longer keys
# (a blob path of a thousand CJK characters) are dead-lettered, in every store alike.
MAX_KEY_BYTES = 2000
MAX_LISTED = 5  # element errors named in the one dead letter of a message
# Types not in the catalog are counted under one label: their names are untrusted and unbounded in number.
OTHER_TYPE = "other"


log = logging.getLogger(__name__)


def normalize_source(source: str) -> str:
    # ARM resource ids are case-insensitive; a trailing slash is noise.
    return source.strip().rstrip("/").lower()


class Intake:
    def __init__(
        self,
        catalog: Catalog,
        allowed_sources: Iterable[str] = (),
        limits: DecodeLimits = DecodeLimits(),
        keep_body_bytes: int = 4096,
    ):
        self.catalog = catalog
        self.reducers = reducer_table(catalog.reducers)
        self.allowed = frozenset(normalize_source(s) for s in allowed_sources if s.strip())
        self.limits = limits
        self.keep_body_bytes = keep_body_bytes
        self._sources: dict[str, str] = {}  # as sent -> normalised; few distinct sources, many events

    def admit(
        self,
        body: bytes,
        tally: Tally,
        origin: Origin | None = None,
        label: str = "",
        delivery_kind: str | None = None,
        body_section: str | None = None,
    ) -> tuple[list[Admitted], list[DeadLetter]]:
        """The events of one message body that may be projected, and at most one dead letter for the rest.

        `body_section` names an AMQP body that is not a data section ("value", "sequence"): no event can be in
        it, so the message is dead-lettered under that reason with `body` as the rendering to keep."""
        if body_section is not None:
            tally.read += 1
            tally.add("dead_lettered", "-")
            reason = f"AMQP {body_section} body: Event Grid writes events as a data section"
            return [], [DeadLetter.of(reason, body, label, None, self.keep_body_bytes)]
        try:
            return self._admit(body, tally, origin, label, delivery_kind)
        except Exception as exc:  # a bug of ours must cost one message, not stop the stream
            log.exception("intake failed on %s; dead-lettered", label)
            tally.read += 1
            tally.add("dead_lettered", "-")
            return [], [self._dead([Malformed(f"internal error: {type(exc).__name__}: {exc}")], body, label)]

    def _admit(
        self, body: bytes, tally: Tally, origin: Origin | None, label: str, delivery_kind: str | None
    ) -> tuple[list[Admitted], list[DeadLetter]]:
        if delivery_kind in _NOT_NOTIFICATIONS:
            tally.read += 1
            tally.add("ignored", delivery_kind)
            return [], []
        decoded = decode_body(body, self.limits)
        tally.read += len(decoded.events) + len(decoded.malformed)
        bad = list(decoded.malformed)
        if bad:
            tally.add("dead_lettered", "-", len(bad))
        admitted: list[Admitted] = []
        if not decoded.events:
            return admitted, [self._dead(bad, body, label)] if bad else []
        size = max(1, len(body) // len(decoded.events))
        # JSON can carry NUL (\u0000) in strings; PostgreSQL text cannot. Identity fields holding one would be
        # stored differently by the two stores, so such events are dead-lettered in every store alike.
        nul_possible = b"\\u0000" in body
        catalog, allowed, sources, reducers = self.catalog, self.allowed, self._sources, self.reducers
        for event in decoded.events:
            entry = catalog.by_type.get(event.type)
            if (
                len(event.source) > MAX_FIELD
                or len(event.id) > MAX_FIELD
                or (event.subject is not None and len(event.subject) > MAX_FIELD)
            ):
                bad.append(Malformed(f"event field longer than {MAX_FIELD} characters", event.id[:MAX_FIELD]))
                tally.add("dead_lettered", event.type if entry is not None else OTHER_TYPE)
                continue
            source = sources.get(event.source)
            if source is None:
                if len(sources) > 10_000:
                    sources.clear()
                source = sources[event.source] = normalize_source(event.source)
            if allowed and source not in allowed:
                tally.add("rejected", event.type if entry is not None else OTHER_TYPE)
                continue
            if entry is None:
                tally.add("ignored", OTHER_TYPE)
                continue
            ident = catalog.identify(event, entry)
            if isinstance(ident, Malformed):
                bad.append(ident)
                tally.add("dead_lettered", event.type)
                continue
            obj, sequencer, etag, time, mismatch = ident
            if mismatch:
                tally.note("subject_mismatch", event.type)
            if nul_possible and any("\x00" in f for f in (event.id, source, obj, sequencer, etag or "")):
                bad.append(
                    Malformed(
                        "NUL character in an identity field (id, source, object, sequencer, etag)",
                        event.id.replace("\x00", "?"),
                    )
                )
                tally.add("dead_lettered", event.type)
                continue
            if len(source) + len(obj) > MAX_KEY_BYTES // 4 and len(source.encode()) + len(obj.encode()) > MAX_KEY_BYTES:
                bad.append(Malformed(f"object key longer than {MAX_KEY_BYTES} bytes", event.id))
                tally.add("dead_lettered", event.type)
                continue
            admitted.append(
                Admitted((source, obj), sequencer, etag, time, event, reducers[entry.reducer], size, origin)
            )
        return admitted, [self._dead(bad, body, label)] if bad else []

    def _dead(self, malformed: list[Malformed], body: bytes, label: str) -> DeadLetter:
        """One dead letter per message, naming its first few problems: a body of a million bad elements must
        not become a million rows, each hashing the whole body."""
        reasons = [m.reason for m in malformed[:MAX_LISTED]]
        if len(malformed) > MAX_LISTED:
            reasons.append(f"and {len(malformed) - MAX_LISTED} more")
        reason = "; ".join(reasons)
        if len(reason) > MAX_REASON:
            reason = reason[: MAX_REASON - 3] + "..."
        event_id = next((m.event_id for m in malformed if m.event_id), None)
        return DeadLetter.of(reason, body, label, event_id, self.keep_body_bytes)
