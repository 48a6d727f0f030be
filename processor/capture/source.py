"""What the Capture reader and its sources (a local folder, a blob container) share: the errors, and the
`Source` a reader lists and opens files through.

Imports the layout only.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from processor.capture.layout import CaptureFile, Layout


class CaptureError(Exception):
    """The Capture files cannot be read (no files, a container that cannot be listed or read): stops the run."""


class CaptureCorrupt(CaptureError):
    """A corrupt file, with `capture.on_corrupt = "stop"`."""


class Stream(Protocol):
    """An open file as fastavro reads it."""

    def read(self, size: int = -1, /) -> bytes: ...


class Source(Protocol):
    shown: str  # how the root is named in messages (no secret: a SAS is cut off)

    def files(self, layout: Layout) -> tuple[list[CaptureFile], list[str]]: ...

    def open(self, file: CaptureFile) -> AbstractContextManager[Stream]: ...

    def close(self) -> None: ...
