"""Which of N fold processes a message goes to, from a glance at its bytes (no decode).

A parallel ingest splits the stream between processes that fold into one store. Any split gives the same
projection: two writers' folds of one object meet at the store's compare-and-set and the second is redone
from the first's row (the stores' two-writer guarantee). So the route only decides how well the work spreads
and how often folds are redone, and it may be a guess. It is the subject, read from the raw bytes:
- a blob's or directory's subject, up to its container: renames and directory operations reach across names,
  never across containers, so a container's namespace folds in one process;
- any other subject, up to its first ':' (a model's version): the objects of the built-in catalog are named
  by their subject's leading part, so each folds in one process.
A message without a readable subject goes to the first process.
"""

from __future__ import annotations

import re
import zlib

_SUBJECT = re.compile(rb'"subject"\s*:\s*"((?:[^"\\]|\\.)*)"')
_CONTAINER = re.compile(rb"/blobServices/default/containers/[^/]*")


def route_key(body: bytes) -> bytes:
    """What decides a message's process: its subject's routing part, or b"" when none is found."""
    at = body.find(b'"subject"')
    if at < 0:
        return b""
    # The common shape, `"subject":"..."` with no escapes, by find; anything else by the regular expression.
    start = at + 11
    end = body.find(b'"', start)
    if body[at + 9 : start] == b':"' and end >= 0 and body.find(b"\\", start, end) < 0:
        subject = body[start:end]
    else:
        found = _SUBJECT.search(body, at)
        if found is None:
            return b""
        subject = found.group(1)
    if subject.startswith(b"/blobServices/"):
        container = _CONTAINER.match(subject)
        if container is not None:
            return container.group(0)
    return subject.split(b":", 1)[0]


def route(body: bytes, processes: int) -> int:
    """The process (0 .. processes-1) that folds this message; stable across runs and machines."""
    if processes == 1:
        return 0
    key = route_key(body)
    return zlib.crc32(key) % processes if key else 0
