"""The records of Capture files, in partition and sequence order, as (label, body, delivery kind) for ingest.

Within a partition Capture's files follow each other by time and continue the sequence with no gap; records
within a file are in sequence order. So reading the files sorted by (namespace, hub, partition, time) reads
each partition in sequence order. What is read is reported, never passed over silently:

- an empty file (Capture writes one per idle window unless told not to; a 0-byte one too) is counted;
- a corrupt file (not Avro, not Capture's `EventData` records, or broken part way) is named with how many of its
  records were read before the break; `capture.on_corrupt` says whether the reading ends there (what was read
  before it still reaches the store; `CaptureReport.stopped` says why, and `raise_if_stopped` raises it as
  CaptureCorrupt for the command to fail) or the rest of the file is skipped and the run goes on;
- a gap in a partition's sequence numbers between consecutive files (a file missing, or one cut short at a
  block boundary, which Avro cannot tell from a whole file) is logged and counted;
- failing to read the folder or the container (OSError, CaptureError) is neither: it stops the run.

`CaptureReport.ends` holds, per partition, the last record read (sequence number and offset): where the hub
takes over in `processor replay --from capture:PATH`.

Imports fastavro, `processor.config` and the package's sources (blob.py only for a URL).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import fastavro

from processor.capture.layout import CaptureFile, Layout
from processor.capture.source import CaptureCorrupt, CaptureError, Source
from processor.config import Settings

log = logging.getLogger(__name__)

# What Capture's records must have for us to read them (its schema has SystemProperties and EnqueuedTimeUtc too).
_NEEDED_FIELDS = frozenset({"SequenceNumber", "Offset", "Body"})
_SCHEMA_NAME = "EventData"
# A report names at most this many files of a kind; the counts are complete.
_NAMED = 5


@dataclass(frozen=True)
class PartitionEnd:
    """The last record read of a partition."""

    sequence_number: int
    offset: str
    file: str


@dataclass
class CaptureReport:
    files: int = 0
    empty: int = 0
    records: int = 0
    corrupt: list[str] = field(default_factory=list)  # each: the file, what was wrong, how far it was read
    gaps: list[str] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)  # .avro files the format does not name: not read
    stopped: str | None = None  # the corrupt file the reading stopped at (capture.on_corrupt = "stop")
    ends: dict[tuple[str, str, str], PartitionEnd] = field(default_factory=dict)  # (namespace, hub, partition)

    def summary(self) -> dict[str, int]:
        return {
            "capture_files": self.files,
            "empty_files": self.empty,
            "corrupt_files": len(self.corrupt),
            "sequence_gaps": len(self.gaps),
            "unmatched_files": len(self.unmatched),
        }


class CaptureReader:
    def __init__(
        self, source: Source, settings: Settings, hub: str | None = None, on_file: Callable[[int], None] | None = None
    ):
        """`hub`: read only that hub's files (Event Hubs names compare case-insensitively); `on_file`: called
        with each file's size once it is read (progress)."""
        self.source = source
        self.layout = Layout(settings.capture_format)
        self.stop_on_corrupt = settings.capture_on_corrupt == "stop"
        self.hub = hub
        self.on_file = on_file
        self.report = CaptureReport()
        self._files: list[CaptureFile] | None = None

    def files(self) -> list[CaptureFile]:
        """The files to read, in reading order. Raises CaptureError when there are none."""
        if self._files is None:
            found, unmatched = self.source.files(self.layout)
            self.report.unmatched = unmatched
            if unmatched:
                log.warning(
                    "%d .avro files under %s do not fit the Capture format %r (PROCESSOR_CAPTURE_FORMAT) and are "
                    "not read, e.g. %s",
                    len(unmatched),
                    self.source.shown,
                    self.layout.format,
                    ", ".join(unmatched[:_NAMED]),
                )
            if self.hub is not None:
                found = [f for f in found if f.hub.lower() == self.hub.lower()]
            if not found:
                of_hub = f" of event hub {self.hub!r}" if self.hub is not None else ""
                raise CaptureError(
                    f"no Capture files{of_hub} under {self.source.shown} named as {self.layout.format!r}.avro "
                    "(PROCESSOR_CAPTURE_FORMAT)" + (f"; not that format: {unmatched[0]}" if unmatched else "")
                )
            self._files = sorted(found)
        return self._files

    def total_bytes(self) -> int:
        return sum(f.size for f in self.files())

    def messages(self) -> Iterator[tuple[str, bytes, str | None]]:
        """(label, body, Event Grid's delivery kind) per record, in order; the label names file and message."""
        report = self.report
        for file in self.files():
            report.files += 1
            key = (file.namespace, file.hub, file.partition)
            before = report.ends.get(key)
            prefix = f"{file.name}:{file.hub}/{file.partition}@"
            count, seq, offset = 0, -1, ""
            try:
                for seq, offset, body, kind in self._records(file):  # noqa: B007 (the last offset is kept below)
                    if not count and before is not None and seq > before.sequence_number + 1:
                        self._gap(file, before, seq)
                    count += 1
                    yield f"{prefix}{seq}", body, kind
            finally:
                # Kept once per file, not per record (measured: a record costs the reader ~1 us beyond fastavro's).
                report.records += count
                if count:
                    report.ends[key] = PartitionEnd(seq, offset, file.name)
            if self.on_file is not None:
                self.on_file(file.size)
            if report.stopped is not None:
                return

    def _records(self, file: CaptureFile) -> Iterator[tuple[int, str, bytes, str | None]]:
        read = 0
        with self.source.open(file) as stream:
            if file.size == 0:
                self.report.empty += 1
                return
            try:
                records: Any = fastavro.reader(stream)  # type: ignore[arg-type]  # any object with read()
                schema: Any = records.writer_schema
                fields = {f.get("name") for f in schema.get("fields", ())} if isinstance(schema, dict) else set()
                name = str(schema.get("name", "")) if isinstance(schema, dict) else ""
                if name.rpartition(".")[2] != _SCHEMA_NAME or not _NEEDED_FIELDS <= fields:
                    raise ValueError(f"not Event Hubs Capture records (schema {name or schema!r})")
                for rec in records:
                    yield rec["SequenceNumber"], rec["Offset"], rec["Body"] or b"", _kind(rec.get("Properties"))
                    read += 1
            except (OSError, CaptureError):
                raise  # the source failed, not the file
            except Exception as exc:  # fastavro's errors have no common base: ValueError, EOFError, zlib.error...
                self._corrupt(file, exc, read)
                return
        if read == 0:
            self.report.empty += 1

    def _corrupt(self, file: CaptureFile, exc: Exception, read: int) -> None:
        what = f"{file.name}: corrupt Capture file ({type(exc).__name__}: {exc}) after {read} records"
        self.report.corrupt.append(what)
        if self.stop_on_corrupt:
            self.report.stopped = (
                f"{what}; stopped there: the projection holds what was read before it, not what follows "
                "(PROCESSOR_CAPTURE_ON_CORRUPT=skip reads on past it)"
            )
            return
        log.error("%s; the rest of it is skipped (PROCESSOR_CAPTURE_ON_CORRUPT=skip)", what)

    def _gap(self, file: CaptureFile, before: PartitionEnd, seq: int) -> None:
        what = (
            f"partition {file.partition} of {file.hub}: sequence numbers {before.sequence_number + 1}..{seq - 1} "
            f"are in no Capture file (between {before.file} and {file.name})"
        )
        self.report.gaps.append(what)
        log.warning("%s: their events are not in the projection", what)

    def raise_if_stopped(self) -> None:
        """CaptureCorrupt when the reading stopped at a corrupt file (after the command wrote what was read)."""
        if self.report.stopped is not None:
            raise CaptureCorrupt(self.report.stopped)

    def close(self) -> None:
        self.source.close()


def _kind(properties: Any) -> str | None:
    """Event Grid's `aeg-event-type` application property, as the feeder reads it off the hub."""
    if not properties:
        return None
    value = properties.get("aeg-event-type")
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def open_capture(
    path: str, settings: Settings, hub: str | None = None, on_file: Callable[[int], None] | None = None
) -> CaptureReader:
    """A reader of the Capture files at `path`: a local folder, or a blob container URL (`https://ACCOUNT.blob.
    core.windows.net/CONTAINER[/PREFIX]`, or Azurite's `http://127.0.0.1:PORT/ACCOUNT/CONTAINER[/PREFIX]`)."""
    source: Source
    if path.startswith(("https://", "http://")):
        from processor.capture.blob import BlobSource  # the Azure SDK: only for a URL

        source = BlobSource(path, settings.capture_connection_string)
    else:
        from processor.capture.local import LocalSource

        source = LocalSource(path)
    return CaptureReader(source, settings, hub, on_file)
