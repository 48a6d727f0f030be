"""The projection's own commands: ingest, export, show, deadletters (a store, no hub)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from processor.config import Settings


def _settings(args: argparse.Namespace) -> Settings:
    from processor.config import load_settings

    return load_settings(path=args.config, store_url=getattr(args, "store", None))


def _run(work: Coroutine[Any, Any, int]) -> int:
    import asyncio

    return asyncio.run(work)


def _out(data: Any) -> None:
    import orjson

    sys.stdout.buffer.write(orjson.dumps(data) + b"\n")


async def _with_store(settings: Settings, work: Callable[[Any], Coroutine[Any, Any, int]]) -> int:
    from processor.stores.registry import open_store

    store = open_store(settings.store_url)
    await store.open()
    try:
        return await work(store)
    finally:
        await store.close()


def cmd_ingest(args: argparse.Namespace) -> int:
    from processor.config import warn_if_any_source
    from processor.ingest import ingest, read_lines

    settings = _settings(args)
    warn_if_any_source(settings)
    if (args.capture is None) == (not args.paths):
        from processor.config import ConfigError

        raise ConfigError("ingest: give files (PATH...) or --capture PATH, one of the two")
    if args.capture is not None:
        from processor.cli.capture import ingest_capture

        return ingest_capture(args, settings)

    async def work(store: Any) -> int:
        from processor.cli.progress import Progress

        progress = Progress("ingest")
        try:
            tally = await ingest(progress.counted(read_lines(args.paths)), settings, store)
        finally:
            progress.close()
        summary = tally.summary()
        if args.json:
            _out(summary)
        else:
            print("  ".join(f"{k.replace('_', '-')} {v}" for k, v in summary.items()))
        return 0

    return _run(_with_store(settings, work))


def cmd_export(args: argparse.Namespace) -> int:
    async def work(store: Any) -> int:
        import orjson

        write = sys.stdout.buffer.write
        async for row in store.export():
            write(orjson.dumps(row.to_json()) + b"\n")
        return 0

    return _run(_with_store(_settings(args), work))


def cmd_show(args: argparse.Namespace) -> int:
    """The object's rows, one JSON line per source that has it."""
    from processor.stores.base import Query

    settings = _settings(args)
    catalog = settings.catalog()

    async def work(store: Any) -> int:
        rows = await store.query(Query(source=args.source, object=args.object, limit=1000))
        if not rows:
            print(
                f"processor: no object {args.object!r}" + (f" from {args.source}" if args.source else ""),
                file=sys.stderr,
            )
            return 1
        for row in rows:
            shown = row.to_json()
            entry = catalog.entry(row.event_type)
            if entry is not None:
                shown["sequencer"] = shown_sequencer(row.sequencer, entry.order)
            _out(shown)
        return 0

    return _run(_with_store(settings, work))


def shown_sequencer(key: str, order: Callable[[object], str]) -> str:
    """The sequencer as the event gave it, from the sort key the store keeps. Only version keys differ
    ("1" + two digits of length + the integer + "." + the fraction, or "2" + text): version 4 is stored as
    "1014.", shown as "4" (2.50 as "2.5"). A key that does not read back to itself is shown as it is."""
    from processor.events.sequencer import version_key

    if order is not version_key or not key:
        return key  # times (the instant, normalised) and strings are their own display
    if key[0] == "1" and key[1:3].isdigit():
        whole, _, fraction = key[3:].partition(".")
        shown = whole + ("." + fraction if fraction else "")
    elif key[0] == "2":
        shown = key[1:]
    else:
        return key
    return shown if version_key(shown) == key else key


def cmd_deadletters(args: argparse.Namespace) -> int:
    """Oldest first, `--limit` at a time; when more follow, says how to get the next page."""
    if args.limit < 1:
        from processor.config import ConfigError

        raise ConfigError(f"--limit: expected a whole number >= 1, got {args.limit}")

    async def work(store: Any) -> int:
        letters = await store.dead_letters(limit=args.limit + 1, after_id=args.after)
        for letter in letters[: args.limit]:
            _out(letter)
        if len(letters) > args.limit:
            sys.stdout.flush()
            print(
                f"processor: {args.limit} dead letters shown and more follow: the next page is "
                f"`processor deadletters --after {letters[args.limit - 1]['id']}`",
                file=sys.stderr,
            )
        return 0

    return _run(_with_store(_settings(args), work))


def register(sub: Any) -> None:
    def store_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--store", help="projection store URL (overrides PROCESSOR_STORE_URL)")

    p = sub.add_parser("ingest", help="project message bodies from files, one per line ('-' = stdin)")
    p.add_argument("paths", nargs="*", metavar="PATH")
    p.add_argument(
        "--capture",
        metavar="PATH",
        help="read Event Hubs Capture files instead: a folder, or a blob container URL "
        "(https://ACCOUNT.blob.core.windows.net/CONTAINER[/FOLDER]); see [capture] in the settings",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    store_option(p)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("export", help="the projection as JSON Lines, sorted by (source, object)")
    store_option(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("show", help="one object's row")
    p.add_argument("object")
    p.add_argument("--source", help="the source (resource id) when several have this object")
    store_option(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("deadletters", help="the dead letters as JSON Lines")
    p.add_argument(
        "--limit",
        type=int,
        default=1000,
        help="at most this many (default 1000); when more follow, the command says so and names the next --after",
    )
    p.add_argument("--after", type=int, default=None, help="only those with an id above this")
    store_option(p)
    p.set_defaults(func=cmd_deadletters)
