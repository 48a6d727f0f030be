"""A fold process of a parallel ingest: the messages its parent routes to it, folded into the store.

Started by `processor.ingest_shards` as `python -m processor.ingest_process`; the frames it reads and answers
are defined in `processor.ingest_wire`. It runs the streaming ingest (`processor.ingest`) on its share, so
what it writes is what one ingest of that share writes; the store's compare-and-set settles an object that
another fold process also wrote.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import AsyncIterator

from processor.config import settings_from_json
from processor.ingest import ingest_batches
from processor.ingest_wire import (
    ENV,
    HEADER_SIZE,
    Done,
    Summary,
    WireMessage,
    decode_to_fold,
    encode_frame,
    frame_length,
)
from processor.runtime import configure_logging
from processor.stores.registry import open_store

log = logging.getLogger("processor.ingest_process")


class ParentGone(Exception):
    """The parent's frames ended before `Done`: it was stopped or died."""


async def _frames(reader: asyncio.StreamReader) -> AsyncIterator[list[WireMessage]]:
    while True:
        try:
            header = await reader.readexactly(HEADER_SIZE)
            frame = decode_to_fold(await reader.readexactly(frame_length(header)))
        except asyncio.IncompleteReadError:
            raise ParentGone() from None
        if isinstance(frame, Done):
            return
        yield frame.items


async def _main() -> int:
    settings = settings_from_json(os.environ[ENV])
    configure_logging(settings.log_level, settings.log_format)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)  # what it buffers ahead of the fold (readexactly takes more)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    store = open_store(settings.store_url, settings.feed_retention(), settings.object_history())
    await store.open()
    try:
        tally = await ingest_batches(_frames(reader), settings, store)
    finally:
        await store.close()
    sys.stdout.buffer.write(encode_frame(Summary.of(tally)))
    sys.stdout.buffer.flush()
    return 0


def main() -> int:
    try:
        return asyncio.run(_main())
    except ParentGone:
        return 3
    except Exception as exc:  # the parent names this process and shows this line
        log.debug("fold process failed", exc_info=True)
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
