"""Rebuild from Event Hubs Capture, then hand over to the hub: what `processor replay --from capture:PATH` does.

1. Every Capture file of the hub is folded into the store through the streaming ingest (disk speed).
2. Each partition's last captured record (sequence number s) is where its hub phase starts: the replay's feeder
   processes (`processor.replay`) read it from s + 1, so nothing between Capture and the hub is missed or read
   twice. A partition Capture never wrote starts at the hub's earliest event.
3. The hub phase ends when every partition is done up to the sequence number the hub had last enqueued when the
   run began; where each partition stopped (sequence number, offset) is where the rebuild stopped.
4. With `checkpoint_live`, those positions become the live consumer group's checkpoints, where the live one is
   older or missing (never moved back), so `processor run` on the new store continues exactly there.

A partition whose events after s are no longer in the hub (retention passed them before the rebuild got there)
cannot be rebuilt whole: it is reported as a gap, never passed over silently.

Imports the Capture reader, the streaming ingest, the parallel hub replay and the hub's adapters.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from processor.capture import CaptureError, CaptureReport, open_capture
from processor.config import Settings
from processor.core.model import Tally
from processor.hub.checkpoints import close_checkpoint_store, open_checkpoint_store
from processor.hub.clients import consumer_client, hub_name, namespace
from processor.hub.wire import Span
from processor.ingest import ingest_messages
from processor.replay import replay_partitions
from processor.stores.base import ProjectionStore

log = logging.getLogger(__name__)


class Stopped(Exception):
    """A stop signal came while Capture was being read."""


@dataclass
class Handoff:
    """What a rebuild did; `ends`: partition -> (sequence number, offset) where it stopped."""

    report: CaptureReport = field(default_factory=CaptureReport)
    capture: Tally = field(default_factory=Tally)
    hub: Tally = field(default_factory=Tally)
    hub_messages: int = 0
    ends: dict[str, tuple[int, str]] = field(default_factory=dict)
    gaps: list[str] = field(default_factory=list)
    live: dict[str, str] = field(default_factory=dict)  # partition -> what became of its live checkpoint
    complete: bool = False

    def summary(self) -> dict[str, Any]:
        capture, hub = self.capture.summary(), self.hub.summary()
        return {
            **{k: capture[k] + hub[k] for k in capture},
            **self.report.summary(),
            "capture_records": self.report.records,
            "hub_messages": self.hub_messages,
            "handoff_gaps": len(self.gaps),
            "ends": {pid: seq for pid, (seq, _offset) in sorted(self.ends.items())},
            "live_checkpoints": self.live,
        }


async def capture_then_hub(
    path: str,
    settings: Settings,
    store: ProjectionStore,
    group: str,
    stopped: Callable[[], bool],
    stop: asyncio.Event,
    checkpoint_live: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    feeders: int = 1,
) -> Handoff:
    """Rebuild into `store` from the Capture files at `path`, then from the hub on consumer group `group`, read by
    `feeders` processes. `stopped()` / `stop`: a stop was asked for."""
    result = Handoff()
    hub, ns = hub_name(settings), namespace(settings)
    reader = open_capture(path, settings, hub=hub)
    try:
        namespaces = sorted({f.namespace for f in reader.files()})
        if len(namespaces) > 1:
            raise CaptureError(
                f"Capture files of event hub {hub!r} from several namespaces ({', '.join(namespaces)}) under "
                f"{path}: name the folder of one"
            )
        total = reader.total_bytes()
        done = [0]

        def file_read(size: int) -> None:
            done[0] += size
            if progress is not None:
                progress("capture", done[0], total)

        reader.on_file = file_read
        result.capture = await ingest_messages(_until_stopped(reader.messages(), stopped), settings, store)
        result.report = reader.report
        reader.raise_if_stopped()  # the hub must not go on from partitions Capture was cut short of
    finally:
        reader.close()
    result.ends = {pid: (end.sequence_number, end.offset) for (_n, _h, pid), end in reader.report.ends.items()}

    async with consumer_client(settings, consumer_group=group) as client:
        pids = await client.get_partition_ids()
        props = {pid: await client.get_partition_properties(pid) for pid in pids}
    unknown = sorted(set(result.ends) - set(pids))
    if unknown:
        raise CaptureError(f"Capture holds partitions {unknown} that event hub {hub!r} does not have ({pids})")
    start = {pid: result.ends.get(pid, (-1, ""))[0] for pid in pids}
    result.gaps = hub_gaps(start, props)
    for gap in result.gaps:
        log.error("%s", gap)
    targets = {pid: p["last_enqueued_sequence_number"] for pid, p in props.items() if not p["is_empty"]}
    remaining = {pid: t for pid, t in targets.items() if start[pid] < t}

    if remaining and not stop.is_set():
        result.complete = await _from_hub(settings, store, group, start, remaining, feeders, stop, result, progress)
    else:
        result.complete = not stop.is_set()
    if result.complete and checkpoint_live:
        result.live = await _move_live_checkpoints(settings, ns, hub, result.ends)
    return result


def hub_gaps(start: dict[str, int], props: dict[str, dict[str, Any]]) -> list[str]:
    """Per partition, the events after `start` (the last one Capture holds, -1 for none) that the hub no longer
    holds either, from its partition properties (the SDK's `get_partition_properties`)."""
    gaps = []
    for pid, p in sorted(props.items()):
        # The first event the hub still holds; an empty partition holds none after its last enqueued one.
        begin = p["last_enqueued_sequence_number"] + 1 if p["is_empty"] else p["beginning_sequence_number"]
        if begin > start[pid] + 1:
            gaps.append(
                f"partition {pid}: events {start[pid] + 1}..{begin - 1} are neither in Capture nor still in the hub "
                f"(it holds from {begin} on): the projection misses them"
            )
    return gaps


def _until_stopped(messages: Iterator[tuple[str, bytes, str | None]], stopped: Callable[[], bool]) -> Iterator[Any]:
    for count, message in enumerate(messages):
        # The signal handler records the signal at once; the event loop only runs between the store's awaits.
        if count % 1000 == 0 and stopped():
            raise Stopped()
        yield message


async def _from_hub(
    settings: Settings,
    store: ProjectionStore,
    group: str,
    start: dict[str, int],
    targets: dict[str, int],
    feeders: int,
    stop: asyncio.Event,
    result: Handoff,
    progress: Callable[[str, int, int], None] | None,
) -> bool:
    """Replay every partition of `targets` from just after `start` (-1: Capture has none of it) up to its target."""
    spans = {pid: Span(end=t, after=start[pid] if start[pid] >= 0 else None) for pid, t in targets.items()}
    # A partition Capture never wrote starts at the hub's earliest event.
    replay_settings = replace(settings, starting_position="earliest")
    hub = await replay_partitions(
        replay_settings,
        store,
        group,
        spans,
        feeders,
        stop,
        progress=(lambda done, total: progress("hub", done, total)) if progress is not None else None,
    )
    result.hub = hub.tally
    result.hub_messages = hub.messages
    result.ends.update(hub.ends)
    return hub.complete


async def _move_live_checkpoints(
    settings: Settings, ns: str, hub: str, ends: dict[str, tuple[int, str]]
) -> dict[str, str]:
    """Write the live consumer group's checkpoints at `ends`, except where the live one is already there or past."""
    group = settings.consumer_group
    live = await open_checkpoint_store(settings)
    what: dict[str, str] = {}
    try:
        now = time.time()
        owned = sorted(
            o["partition_id"]
            for o in await live.list_ownership(ns, hub, group)
            if o.get("owner_id") and now - float(o.get("last_modified_time") or 0) < settings.ownership_expiration
        )
        if owned:
            log.warning(
                "partitions %s of consumer group %r are owned by a running worker: it goes on from its own position "
                "and will overwrite these checkpoints; stop the live workers before a rebuild hands over to them",
                ", ".join(owned),
                group,
            )
        existing = {c["partition_id"]: c for c in await live.list_checkpoints(ns, hub, group)}
        for pid, (seq, offset) in sorted(ends.items()):
            have = existing.get(pid)
            have_seq = None if have is None or have.get("sequence_number") is None else int(have["sequence_number"])
            if have_seq is not None and have_seq >= seq:
                what[pid] = f"kept at {have_seq} (at or past the rebuild's {seq})"
                continue
            await live.update_checkpoint(_checkpoint(ns, hub, group, pid, seq, offset))
            what[pid] = f"{'-' if have_seq is None else have_seq} -> {seq}"
            log.info("live checkpoint of partition %s (%s) moved to %d (was %s)", pid, group, seq, have_seq)
    finally:
        await close_checkpoint_store(live)
    return what


def _checkpoint(ns: str, hub: str, group: str, pid: str, seq: int, offset: str) -> dict[str, Any]:
    return {
        "fully_qualified_namespace": ns,
        "eventhub_name": hub,
        "consumer_group": group,
        "partition_id": pid,
        "offset": offset,
        "sequence_number": seq,
    }
