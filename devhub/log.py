"""One partition's event log: append, position lookup, retention, optional file persistence.

Sequence numbers are contiguous, so records live in plain lists indexed by
`sequence_number - base_seq`; retention advances `start` and compacts the lists lazily, which keeps
trimming O(1) amortised. Offsets are byte positions in the partition (like the service's), exposed
as strings.

Persistence is an append-only file per partition (`<data_dir>/<hub>/<partition>.log`), replayed on
start; it is rewritten only when retention has made most of it dead. It is meant to survive a
DevHub restart, not a machine crash: writes are flushed, not fsynced.
"""

from __future__ import annotations

import bisect
import os
import struct
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from .message import annotate

_RECORD = struct.Struct(">IqqqI")  # payload length, sequence number, offset, enqueued ms, header split


def now_ms() -> int:
    return int(time.time() * 1000)


class PartitionLog:
    def __init__(
        self,
        hub: str,
        partition: str,
        *,
        retention_events: int | None = None,
        retention_seconds: float | None = None,
        path: Path | None = None,
    ) -> None:
        self.hub = hub
        self.partition = partition
        self.retention_events = retention_events
        self.retention_seconds = retention_seconds
        self.messages: list[bytes] = []
        self.splits: list[int] = []
        self.offsets: list[int] = []
        self.times: list[int] = []
        self.start = 0  # index of the first retained record
        self.base_seq = 0  # sequence number of messages[0]
        self.next_seq = 0
        self.next_offset = 0
        self.last_offset = -1
        self.last_time = 0
        # Consumers parked until new events arrive; woken (synchronously) by append.
        self.waiters: set = set()
        self.readers: set = set()
        # Fault injection state, read by consumer links.
        self.paused = False
        self.delay = 0.0
        self._path = path
        self._file = None
        self._dead_on_disk = 0
        if path is not None:
            self._load(path)
            self._file = open(path, "ab")

    # ------------------------------------------------------------------ state

    @property
    def begin_seq(self) -> int:
        return self.base_seq + self.start

    @property
    def count(self) -> int:
        return len(self.messages) - self.start

    def properties(self) -> dict:
        empty = self.count == 0
        return {
            "eventhub_name": self.hub,
            "id": self.partition,
            "beginning_sequence_number": self.begin_seq if not empty else self.next_seq,
            "last_enqueued_sequence_number": self.next_seq - 1,
            "last_enqueued_offset": str(self.last_offset),
            "last_enqueued_time_utc": datetime.fromtimestamp(self.last_time / 1000, UTC),
            "is_empty": empty,
        }

    # ------------------------------------------------------------------ writing

    def append(self, raw_messages: Iterable[bytes | memoryview], partition_key: str | None) -> int:
        """Store messages (already validated) and wake parked consumers; returns how many."""
        stamp = max(now_ms(), self.last_time)
        n = 0
        records = []
        for raw in raw_messages:
            seq = self.next_seq
            offset = self.next_offset
            body, split = annotate(raw, seq, offset, stamp, partition_key)
            self.messages.append(body)
            self.splits.append(split)
            self.offsets.append(offset)
            self.times.append(stamp)
            self.next_seq = seq + 1
            self.next_offset = offset + len(body)
            self.last_offset = offset
            n += 1
            if self._file is not None:
                records.append(_RECORD.pack(len(body), seq, offset, stamp, split))
                records.append(body)
        if not n:
            return 0
        self.last_time = stamp
        if self._file is not None:
            self._file.write(b"".join(records))
            self._file.flush()
        self.trim(stamp)
        self.wake()
        return n

    def wake(self) -> None:
        if not self.waiters:
            return
        waiters, self.waiters = self.waiters, set()
        for consumer in waiters:
            consumer.pump()

    def trim(self, now: int | None = None) -> None:
        """Apply retention by count and by age."""
        drop_to = self.start
        total = len(self.messages)
        if self.retention_events is not None and total - drop_to > self.retention_events:
            drop_to = total - self.retention_events
        if self.retention_seconds is not None:
            cutoff = (now if now is not None else now_ms()) - int(self.retention_seconds * 1000)
            drop_to = max(drop_to, bisect.bisect_left(self.times, cutoff, drop_to, total))
        if drop_to == self.start:
            return
        for i in range(self.start, drop_to):
            self.messages[i] = b""  # free the payload now; the slot goes at the next compaction
        self._dead_on_disk += drop_to - self.start
        self.start = drop_to
        if self.start > 1024 and self.start * 2 > len(self.messages):
            del self.messages[: self.start], self.splits[: self.start]
            del self.offsets[: self.start], self.times[: self.start]
            self.base_seq += self.start
            self.start = 0
        if self._file is not None and self._dead_on_disk > max(1000, self.count):
            self._rewrite()

    # ------------------------------------------------------------------ reading

    def record(self, seq: int) -> tuple[bytes, int]:
        i = seq - self.base_seq
        return self.messages[i], self.splits[i]

    def slice(self, seq: int, n: int) -> tuple[list[bytes], list[int]]:
        i = seq - self.base_seq
        return self.messages[i : i + n], self.splits[i : i + n]

    def start_from_offset(self, offset: int, inclusive: bool) -> int:
        finder = bisect.bisect_left if inclusive else bisect.bisect_right
        i = finder(self.offsets, offset, self.start, len(self.offsets))
        return self.base_seq + i

    def start_from_sequence(self, seq: int, inclusive: bool) -> int:
        first = seq if inclusive else seq + 1
        return min(max(first, self.begin_seq), self.next_seq)

    def start_from_time(self, ms: int, inclusive: bool) -> int:
        finder = bisect.bisect_left if inclusive else bisect.bisect_right
        i = finder(self.times, ms, self.start, len(self.times))
        return self.base_seq + i

    # ------------------------------------------------------------------ persistence

    def _load(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            return
        data = path.read_bytes()
        pos = 0
        first = True
        while pos + _RECORD.size <= len(data):
            length, seq, offset, stamp, split = _RECORD.unpack_from(data, pos)
            end = pos + _RECORD.size + length
            if end > len(data):
                break  # torn tail from an interrupted write
            if first:
                self.base_seq = seq
                first = False
            self.messages.append(data[pos + _RECORD.size : end])
            self.splits.append(split)
            self.offsets.append(offset)
            self.times.append(stamp)
            self.next_seq = seq + 1
            self.next_offset = offset + length
            self.last_offset = offset
            self.last_time = stamp
            pos = end
        if pos != len(data):
            with open(path, "r+b") as f:
                f.truncate(pos)
        before = self.start
        self.trim()
        if self.start != before or pos != len(data):
            self._rewrite(opened=False)

    def _rewrite(self, opened: bool = True) -> None:
        assert self._path is not None
        tmp = self._path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            for i in range(self.start, len(self.messages)):
                body = self.messages[i]
                f.write(_RECORD.pack(len(body), self.base_seq + i, self.offsets[i], self.times[i], self.splits[i]))
                f.write(body)
        if opened and self._file is not None:
            self._file.close()
        os.replace(tmp, self._path)
        if opened:
            self._file = open(self._path, "ab")
        self._dead_on_disk = 0

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class Hub:
    """A hub: its partitions and consumer groups, plus metadata persisted next to the logs."""

    def __init__(
        self,
        name: str,
        partitions: int,
        consumer_groups: Iterable[str],
        *,
        retention_events: int | None,
        retention_seconds: float | None,
        data_dir: Path | None,
    ) -> None:
        self.name = name
        self.consumer_groups = {cg.lower(): cg for cg in consumer_groups}
        self.partition_ids = [str(i) for i in range(partitions)]
        folder = data_dir / name if data_dir is not None else None
        self.created_at = now_ms()
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            meta = folder / "created_at"
            if meta.exists():
                self.created_at = int(meta.read_text().strip() or self.created_at)
            else:
                meta.write_text(str(self.created_at))
        self.partitions = {
            pid: PartitionLog(
                name,
                pid,
                retention_events=retention_events,
                retention_seconds=retention_seconds,
                path=folder / f"{pid}.log" if folder is not None else None,
            )
            for pid in self.partition_ids
        }
        self._round_robin = -1

    def group_not_found(self, group: str) -> str:
        """The service's words for a missing consumer group, and how to create it here."""
        return (
            f"The messaging entity '{self.name}/consumergroups/{group}' could not be found. DevHub has the "
            f"consumer groups {', '.join(self.consumer_groups.values())} (case-insensitive); "
            f"add one with `devhub serve --consumer-group {group}`."
        )

    def next_round_robin(self) -> str:
        self._round_robin = (self._round_robin + 1) % len(self.partition_ids)
        return self.partition_ids[self._round_robin]

    def close(self) -> None:
        for log in self.partitions.values():
            log.close()
