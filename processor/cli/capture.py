"""Rebuilding from Event Hubs Capture: `processor ingest --capture PATH` (and the Capture half of `processor replay
--from capture:PATH`, in processor/handoff.py).

Imports the Capture reader and the streaming ingest; nothing of the Azure SDK unless PATH is a URL.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from processor.cli.output import write_summary
from processor.config import Settings


def ingest_capture(args: argparse.Namespace, settings: Settings) -> int:
    """Fold every record of the Capture files at `args.capture` into the store; print the summary (the ingest
    counts, then the files': read, empty, corrupt and skipped, gaps, not in the format)."""
    import asyncio

    from processor.capture import CaptureError, open_capture
    from processor.ingest import as_batches
    from processor.ingest_shards import ingest_sharded
    from processor.stores.registry import open_store

    async def main() -> int:
        from processor.cli.progress import Progress

        progress = Progress("capture", unit="B")
        reader = open_capture(args.capture, settings, on_file=lambda size: progress.update(progress.done + size))
        store = open_store(settings.store_url)
        await store.open()
        try:
            progress.update(0, reader.total_bytes())
            tally = await ingest_sharded(as_batches(reader.messages()), settings, store)
            reader.raise_if_stopped()
        except CaptureError as exc:
            progress.close()
            print(f"processor: ingest: {exc}", file=sys.stderr)
            return 1
        finally:
            progress.close()
            await store.close()
            reader.close()
        write_summary({**tally.summary(), **reader.report.summary()}, args)
        return 0

    return asyncio.run(main())


def replay_capture(args: argparse.Namespace, settings: Settings) -> int:
    """`processor replay --from capture:PATH`: Capture, then the hub from where Capture ended (processor/handoff.py);
    with --checkpoint-live, the live consumer group's checkpoints move to where the rebuild stopped."""
    import asyncio
    import signal

    from azure.eventhub.exceptions import EventHubError

    from processor.capture import CaptureError
    from processor.config import warn_if_any_source
    from processor.handoff import Stopped, capture_then_hub
    from processor.hub.clients import hub_problem
    from processor.replay import ReplayFailed, default_feeders
    from processor.runtime import stop_on_signal
    from processor.stores.registry import open_store

    path = args.from_.removeprefix("capture:")
    warn_if_any_source(settings)

    async def main() -> int:
        stop = asyncio.Event()
        signals = stop_on_signal(stop)
        store = open_store(settings.store_url)
        await store.open()
        try:
            counts = await store.counts()
            if counts["objects"] and not args.force:
                print(
                    f"processor: the store already holds {counts['objects']} objects; replay rebuilds into a "
                    "fresh store (or pass --force to fold into this one)",
                    file=sys.stderr,
                )
                return 1
            phases = _Phases()
            try:
                result = await capture_then_hub(
                    path,
                    settings,
                    store,
                    args.consumer_group,
                    stopped=lambda: signals.received is not None,
                    stop=stop,
                    checkpoint_live=args.checkpoint_live,
                    progress=phases.update,
                    feeders=settings.replay_feeders or default_feeders(),
                )
            except (CaptureError, ReplayFailed) as exc:
                print(f"processor: replay: {exc}", file=sys.stderr)
                return 1
            except EventHubError as exc:
                print(f"processor: replay: {hub_problem(settings, exc)}", file=sys.stderr)
                return 1
            except Stopped:
                result = None
            finally:
                phases.close()
        finally:
            await store.close()
        if result is None or not result.complete:
            received = signals.received or signal.SIGINT
            print(
                f"processor: replay stopped by {signal.Signals(received).name}: the projection it wrote is not "
                "complete (replay again into a fresh store); live checkpoints untouched",
                file=sys.stderr,
            )
            return 128 + received
        summary = result.summary()
        if not getattr(args, "json", False):  # the closing `key value` line: the counts; the rest was logged
            summary = {k: v for k, v in summary.items() if not isinstance(v, dict)}
        write_summary(summary, args)
        if result.gaps:
            print(f"processor: replay: {len(result.gaps)} partitions miss events (see above)", file=sys.stderr)
            return 1
        return 0

    return asyncio.run(main())


class _Phases:
    """One progress per phase of a hand-off: Capture (bytes of files), then the hub (messages)."""

    def __init__(self) -> None:
        self.current: Any = None
        self.phase = ""

    def update(self, phase: str, done: int, total: int) -> None:
        from processor.cli.progress import Progress

        if phase != self.phase:
            self.close()
            self.phase = phase
            self.current = Progress(
                "replay from Capture" if phase == "capture" else "replay from the hub",
                unit="B" if phase == "capture" else "messages",
            )
        self.current.update(done, total)

    def close(self) -> None:
        if self.current is not None:
            self.current.close()
            self.current = None
