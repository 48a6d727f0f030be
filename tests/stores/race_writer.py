"""One race writer in its own process: python -m tests.stores.race_writer URL EVENTS SEED WRITER WRITERS

Builds its plan, prints "ready", waits for a line on stdin, runs, prints its summary as JSON.
"""

from __future__ import annotations

import asyncio
import sys

import orjson

from processor.stores.registry import open_store
from tests.stores.race import Stream, write


async def main(url: str, events: int, seed: int, writer: int, writers: int) -> None:
    plan = Stream(events, seed).plan(seed, writer, writers)
    store = open_store(url)
    await store.open()
    try:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        summary = await write(store, plan)
    finally:
        await store.close()
    print(orjson.dumps(summary).decode(), flush=True)


if __name__ == "__main__":
    url, events, seed, writer, writers = sys.argv[1:6]
    asyncio.run(main(url, int(events), int(seed), int(writer), int(writers)))
