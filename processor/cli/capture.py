"""Rebuilding from Event Hubs Capture: `processor ingest --capture PATH` (and the Capture half of `processor replay
--from capture:PATH`, in processor/handoff.py).

Imports the Capture reader and the streaming ingest; nothing of the Azure SDK unless PATH is a URL.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from processor.config import Settings


def ingest_capture(args: argparse.Namespace, settings: Settings) -> int:
    """Fold every record of the Capture files at `args.capture` into the store; print the summary (the ingest
    counts, then the files': read, empty, corrupt and skipped, gaps, not in the format)."""
    import asyncio

    from processor.capture import CaptureError, open_capture
    from processor.ingest import ingest_messages
    from processor.stores.registry import open_store

    async def main() -> int:
        reader = open_capture(args.capture, settings)
        store = open_store(settings.store_url)
        await store.open()
        try:
            tally = await ingest_messages(reader.messages(), settings, store)
        except CaptureError as exc:
            print(f"processor: ingest: {exc}", file=sys.stderr)
            return 1
        finally:
            await store.close()
            reader.close()
        _summary({**tally.summary(), **reader.report.summary()}, args.json)
        return 0

    return asyncio.run(main())


def _summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        import orjson

        sys.stdout.buffer.write(orjson.dumps(summary) + b"\n")
    else:
        print("  ".join(f"{k.replace('_', '-')} {v}" for k, v in summary.items()))
