"""Event Hubs Capture files as the service writes them, for tests and benchmarks.

The schema below is the service's, written out here on its own (not imported from processor.capture), so a
reader that drifted from it would fail the tests. Files are deflate-compressed Avro containers (Capture's
default codec), named `{Namespace}/{EventHub}/{PartitionId}/{Year}/{Month}/{Day}/{Hour}/{Minute}/{Second}.avro`
unless a format is given, one file per partition per window of `per_file` records.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import fastavro

# The Avro schema of Event Hubs Capture's records, as documented for the service.
CAPTURE_SCHEMA = {
    "type": "record",
    "name": "EventData",
    "namespace": "Microsoft.ServiceBus.Messaging",
    "fields": [
        {"name": "SequenceNumber", "type": "long"},
        {"name": "Offset", "type": "string"},
        {"name": "EnqueuedTimeUtc", "type": "string"},
        {"name": "SystemProperties", "type": {"type": "map", "values": ["long", "double", "string", "bytes"]}},
        {"name": "Properties", "type": {"type": "map", "values": ["long", "double", "string", "bytes"]}},
        {"name": "Body", "type": ["null", "bytes"]},
    ],
}
PARSED = fastavro.parse_schema(CAPTURE_SCHEMA)
DEFAULT_FORMAT = "{Namespace}/{EventHub}/{PartitionId}/{Year}/{Month}/{Day}/{Hour}/{Minute}/{Second}"
START = datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC)


@dataclass
class Record:
    sequence_number: int
    offset: str
    body: bytes | None
    enqueued: datetime = START
    properties: dict = field(default_factory=lambda: {"aeg-event-type": "Notification"})


def us_time(t: datetime) -> str:
    """EnqueuedTimeUtc as Capture writes it: US culture, e.g. `8/31/2017 7:12:14 PM`."""
    hour = t.hour % 12 or 12
    return f"{t.month}/{t.day}/{t.year} {hour}:{t.minute:02d}:{t.second:02d} {'AM' if t.hour < 12 else 'PM'}"


def avro_file(records: list[Record], codec: str = "deflate") -> bytes:
    out = io.BytesIO()
    rows = [
        {
            "SequenceNumber": r.sequence_number,
            "Offset": r.offset,
            "EnqueuedTimeUtc": us_time(r.enqueued),
            "SystemProperties": {
                "x-opt-sequence-number": r.sequence_number,
                "x-opt-offset": r.offset,
                "x-opt-enqueued-time": int(r.enqueued.timestamp() * 1000),
            },
            "Properties": r.properties,
            "Body": r.body,
        }
        for r in records
    ]
    # A small sync interval: several blocks per file, as a large file has.
    fastavro.writer(out, PARSED, rows, codec=codec, sync_interval=4000)
    return out.getvalue()


def file_name(fmt: str, namespace: str, hub: str, partition: str, t: datetime) -> str:
    return (
        fmt.replace("{Namespace}", namespace)
        .replace("{EventHub}", hub)
        .replace("{PartitionId}", partition)
        .replace("{Year}", f"{t.year:04d}")
        .replace("{Month}", f"{t.month:02d}")
        .replace("{Day}", f"{t.day:02d}")
        .replace("{Hour}", f"{t.hour:02d}")
        .replace("{Minute}", f"{t.minute:02d}")
        .replace("{Second}", f"{t.second:02d}")
        + ".avro"
    )


def records_of(bodies: list[bytes], partitions: int) -> dict[str, list[Record]]:
    """The bodies spread over partitions (message i to partition i % partitions), each partition's sequence
    numbers from 0 and offsets growing by the body's size, as a hub stamps them."""
    out: dict[str, list[Record]] = {str(p): [] for p in range(partitions)}
    offsets = dict.fromkeys(out, 0)
    for i, body in enumerate(bodies):
        pid = str(i % partitions)
        seq = len(out[pid])
        out[pid].append(Record(seq, str(offsets[pid]), body, START + timedelta(seconds=seq)))
        offsets[pid] += len(body) + 100
    return out


def capture_files(
    by_partition: dict[str, list[Record]],
    per_file: int = 50,
    namespace: str = "ns",
    hub: str = "events",
    fmt: str = DEFAULT_FORMAT,
    idle_window_after: int | None = 0,
    codec: str = "deflate",
) -> dict[str, bytes]:
    """name -> file content. Each partition's records in windows of `per_file`, one window a minute; after
    the window numbered `idle_window_after` each partition also gets an empty file (an idle window)."""
    files: dict[str, bytes] = {}
    for pid, records in by_partition.items():
        window = 0
        for start in range(0, len(records), per_file):
            when = START + timedelta(minutes=window)
            files[file_name(fmt, namespace, hub, pid, when)] = avro_file(records[start : start + per_file], codec)
            if idle_window_after == start // per_file:
                window += 1
                files[file_name(fmt, namespace, hub, pid, START + timedelta(minutes=window))] = avro_file([], codec)
            window += 1
    return files


def write_folder(root: Path, files: dict[str, bytes]) -> None:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
