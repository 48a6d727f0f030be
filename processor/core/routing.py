"""Which of N fold processes a message goes to, from a glance at its bytes (no decode).

A parallel ingest splits the stream between processes that fold into one store. Any split gives the same
projection: two writers' folds of one object meet at the store's compare-and-set and the second is redone
from the first's row (the stores' two-writer guarantee). So the route only decides how well the work spreads
and how often folds are redone, and it may be a guess. It is the subject, read from the raw bytes:
- a blob's subject, whole, while its container looks flat: a flat container's blobs are independent, and one
  container often holds most of an account's traffic;
- a blob's or directory's subject up to its container once the container shows a hierarchical namespace (a
  directory event, a rename, a Data Lake endpoint): renames and directory operations reach across names,
  never across containers, so such a container's namespace then folds in one process;
- any other subject up to its first ':' (a model's version): the objects of the built-in catalog are named
  by their subject's leading part, so each folds in one process.
A message without a readable subject goes to the first process.
"""

from __future__ import annotations

import re
import zlib

_SUBJECT = re.compile(rb'"subject"\s*:\s*"((?:[^"\\]|\\.)*)"')
_CONTAINER = re.compile(rb"/blobServices/default/containers/[^/]*")
# What only a hierarchical namespace sends: directory events, renames, the Data Lake (dfs) endpoint.
_HIERARCHICAL = (b"Microsoft.Storage.Directory", b"Microsoft.Storage.BlobRenamed", b".dfs.core.windows.net")
MAX_REMEMBERED = 100_000  # hierarchical containers remembered; beyond, the set starts again (a guess anyway)


def subject_of(body: bytes) -> bytes | None:
    """The first subject in the message's raw JSON, as written (escapes kept), or None."""
    at = body.find(b'"subject"')
    if at < 0:
        return None
    # The common shape, `"subject":"..."` with no escapes, by find; anything else by the regular expression.
    start = at + 11
    end = body.find(b'"', start)
    if body[at + 9 : start] == b':"' and end >= 0 and body.find(b"\\", start, end) < 0:
        return body[start:end]
    found = _SUBJECT.search(body, at)
    return found.group(1) if found is not None else None


class Router:
    """Routes the messages of one stream, remembering which containers showed a hierarchical namespace."""

    def __init__(self) -> None:
        self.hierarchical: set[bytes] = set()

    def key(self, body: bytes) -> bytes:
        """What decides a message's process (b"": none found)."""
        subject = subject_of(body)
        if subject is None:
            return b""
        if subject.startswith(b"/blobServices/"):
            found = _CONTAINER.match(subject)
            if found is None:
                return subject
            container = found.group(0)
            if container in self.hierarchical:
                return container
            if any(marker in body for marker in _HIERARCHICAL):
                if len(self.hierarchical) >= MAX_REMEMBERED:
                    self.hierarchical.clear()
                self.hierarchical.add(container)
                return container
            return subject
        return subject.split(b":", 1)[0]

    def __call__(self, body: bytes, processes: int) -> int:
        """The process (0 .. processes-1) that folds this message; the same for the same stream, anywhere."""
        if processes == 1:
            return 0
        key = self.key(body)
        return zlib.crc32(key) % processes if key else 0
