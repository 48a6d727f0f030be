"""Capture's file names: which namespace, hub, partition and time window a file holds, and the order to read in.

A format (the `capture.format` setting, checked there to hold each token once) becomes a pattern matched against
the END of a file's path, so the root given may be the container, or any folder down to a partition's: the
tokens still come from the path the files really have. Capture appends `.avro`.

Imports nothing of the package.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# What each token matches: names are one path segment; times are Capture's zero-padded digits.
_TOKEN_PATTERNS = {
    "Namespace": r"[^/]+",
    "EventHub": r"[^/]+",
    "PartitionId": r"[^/]+",
    "Year": r"\d{4}",
    "Month": r"\d{2}",
    "Day": r"\d{2}",
    "Hour": r"\d{2}",
    "Minute": r"\d{2}",
    "Second": r"\d{2}",
}
_TIME = ("Year", "Month", "Day", "Hour", "Minute", "Second")


@dataclass(frozen=True, order=True)
class CaptureFile:
    """One Capture file, ordered as it is read: by hub, partition (numerically where it is a number), time."""

    namespace: str
    hub: str
    partition_order: tuple[int, str]
    when: tuple[int, ...]  # year, month, day, hour, minute, second of the window
    name: str  # as reported: the path under the root given, or container/blob
    partition: str = field(compare=False)
    size: int = field(compare=False)
    location: str = field(compare=False)  # what the source opens it by (a path, a blob name)


class Layout:
    def __init__(self, fmt: str):
        self.format = fmt
        pattern, pos = [], 0
        for m in re.finditer(r"{([A-Za-z]+)}", fmt):
            pattern.append(re.escape(fmt[pos : m.start()]))
            pattern.append(f"(?P<{m.group(1)}>{_TOKEN_PATTERNS[m.group(1)]})")
            pos = m.end()
        pattern.append(re.escape(fmt[pos:]))
        self._pattern = re.compile(r"(?:^|/)" + "".join(pattern) + r"\.avro$")

    def parse(self, path: str, name: str, size: int, location: str) -> CaptureFile | None:
        """The file at `path` (slash-separated) if the format names it, else None."""
        m = self._pattern.search(path)
        if m is None:
            return None
        partition = m["PartitionId"]
        return CaptureFile(
            namespace=m["Namespace"],
            hub=m["EventHub"],
            partition_order=(int(partition), "") if partition.isdigit() else (1 << 62, partition),
            when=tuple(int(m[t]) for t in _TIME),
            name=name,
            partition=partition,
            size=size,
            location=location,
        )
