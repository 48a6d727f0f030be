"""The Capture files of a local folder (a copy of the container, `azcopy`'d or mounted).

Imports the layout and the sources' protocol only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

from processor.capture.layout import CaptureFile, Layout
from processor.capture.source import Stream


class LocalSource:
    def __init__(self, root: str):
        self.root = root
        self.shown = root

    def files(self, layout: Layout) -> tuple[list[CaptureFile], list[str]]:
        """The Capture files under the root, and the `.avro` files there that the format does not name.
        Raises OSError when the root is not a readable folder."""
        root = Path(self.root)
        if not root.is_dir():
            raise FileNotFoundError(2, "no such folder", self.root)
        found: list[CaptureFile] = []
        unmatched: list[str] = []
        for path in self._walk(root):
            name = os.path.join(self.root, os.path.relpath(path, root))
            # Matched by the absolute path, so that a root inside the layout (a hub's folder) still names it all.
            file = layout.parse(Path(path).resolve().as_posix(), name, os.path.getsize(path), path)
            if file is None:
                unmatched.append(name)
            else:
                found.append(file)
        return found, unmatched

    def _walk(self, root: Path) -> Iterator[str]:
        def fail(exc: OSError) -> None:
            raise exc  # an unreadable folder must not silently hide its files

        for folder, _dirs, names in os.walk(root, onerror=fail):
            for n in names:
                if n.endswith(".avro"):
                    yield os.path.join(folder, n)

    def open(self, file: CaptureFile) -> AbstractContextManager[Stream]:
        return open(file.location, "rb")

    def close(self) -> None:
        pass
