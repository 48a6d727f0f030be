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

    return load_settings(
        path=args.config,
        store_url=args.store,
        log_level=args.log_level,
        ingest_processes=getattr(args, "processes", None),
    )


def _process_count(text: str) -> int:
    if not text.isascii() or not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number (0: one per core), got {text!r}")
    return int(text)


def _run(work: Coroutine[Any, Any, int]) -> int:
    import asyncio

    return asyncio.run(work)


async def _with_store(settings: Settings, work: Callable[[Any], Coroutine[Any, Any, int]]) -> int:
    from processor.stores.registry import open_store

    store = open_store(settings.store_url, settings.feed_retention(), settings.object_history())
    await store.open()
    try:
        return await work(store)
    finally:
        await store.close()


def cmd_ingest(args: argparse.Namespace) -> int:
    from processor.config import warn_if_any_source
    from processor.ingest import as_batches, read_lines

    settings = _settings(args)
    warn_if_any_source(settings)
    if (args.capture is None) == (not args.paths):
        from processor.config import ConfigError

        raise ConfigError("ingest: give files (PATH...) or --capture PATH, one of the two")
    if args.capture is not None:
        from processor.cli.capture import ingest_capture

        return ingest_capture(args, settings)

    async def work(store: Any) -> int:
        from processor.cli.output import write_summary
        from processor.cli.progress import Progress
        from processor.ingest_shards import ingest_sharded

        progress = Progress("ingest")
        try:
            messages = ((label, body, None) for label, body in progress.counted(read_lines(args.paths)))
            tally = await ingest_sharded(as_batches(messages), settings, store)
        finally:
            progress.close()
        write_summary(tally.summary(), args)
        return 0

    return _run(_with_store(settings, work))


def cmd_export(args: argparse.Namespace) -> int:
    from processor.cli.output import SIZING_ROWS, Table, wants_json

    as_json = wants_json(args)

    async def work(store: Any) -> int:
        import orjson

        # Written as the rows come: an export of millions never sits in memory (a table waits for its first rows,
        # which set the column widths).
        write = sys.stdout.buffer.write
        first: list[dict[str, Any]] = []
        table: Table | None = None
        async for row in store.export():
            if as_json:
                write(orjson.dumps(row.to_json()) + b"\n")
            elif table is not None:
                sys.stdout.write(table.row(row.to_json()))
            else:
                first.append(row.to_json())
                if len(first) == SIZING_ROWS:
                    table = Table(ROW_COLUMNS, first)
                    sys.stdout.writelines(table.lines)
        if not as_json and table is None:
            sys.stdout.writelines(Table(ROW_COLUMNS, first).lines)
        sys.stdout.flush()
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
        from processor.cli.output import write_records

        shown_rows = []
        for row in rows:
            shown = row.to_json()
            entry = catalog.entry(row.event_type)
            if entry is not None:
                shown["sequencer"] = shown_sequencer(row.sequencer, entry.order)
            shown_rows.append(shown)
        write_records(shown_rows, args, ROW_COLUMNS)
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
        from processor.cli.output import write_records

        letters = await store.dead_letters(limit=args.limit + 1, after_id=args.after)
        write_records(letters[: args.limit], args, DEAD_LETTER_COLUMNS)
        if len(letters) > args.limit:
            sys.stdout.flush()
            print(
                f"processor: {args.limit} dead letters shown and more follow: the next page is "
                f"`processor deadletters --after {letters[args.limit - 1]['id']}`",
                file=sys.stderr,
            )
        return 0

    return _run(_with_store(_settings(args), work))


def _columns() -> tuple[list[Any], list[Any]]:
    from processor.cli.output import Column, tail

    rows = [
        Column("object", lambda r: r["object"], 60),
        Column("source", lambda r: tail(r["source"], 2), 30),
        Column("type", lambda r: tail(r["event_type"], 1, "."), 24),
        Column("sequencer", lambda r: r["sequencer"], 32),
        Column("updated", lambda r: r["updated_at"], 27),
        Column("state", lambda r: r["state"], 60),
    ]
    letters = [
        Column("id", lambda d: d["id"], 12),
        Column("received", lambda d: d["received_at"], 27),
        Column("origin", lambda d: d["origin"], 30),
        Column("reason", lambda d: d["reason"], 60),
        Column("body", lambda d: d["body"], 60),
    ]
    return rows, letters


ROW_COLUMNS, DEAD_LETTER_COLUMNS = _columns()


def register(sub: Any) -> None:
    from processor.cli.output import add_output_options

    def store_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--store", help="projection store URL (overrides PROCESSOR_STORE_URL)")

    p = sub.add_parser("ingest", help="project message bodies from files, one per line ('-' = stdin)")
    p.add_argument("paths", nargs="*", metavar="PATH", help="a file of message bodies, one per line ('-' = stdin)")
    p.add_argument(
        "--capture",
        metavar="PATH",
        help="read Event Hubs Capture files instead: a folder, or a blob container URL "
        "(https://ACCOUNT.blob.core.windows.net/CONTAINER[/FOLDER]); see [capture] in the settings",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument(
        "--processes",
        type=_process_count,
        metavar="N",
        help="fold processes, each with its share of the cache; 0: one per core "
        "(overrides PROCESSOR_INGEST_PROCESSES; default 1)",
    )
    store_option(p)
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("export", help="the projection, sorted by (source, object)")
    add_output_options(p)
    store_option(p)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("show", help="one object's row, per source that has it")
    p.add_argument("object", help="the object's name, e.g. runs/RUN_ID or models/NAME")
    p.add_argument("--source", help="the source (resource id) when several have this object")
    add_output_options(p)
    store_option(p)
    p.set_defaults(func=cmd_show)

    p = sub.add_parser("deadletters", help="the dead letters with their reasons and (escaped) bodies, oldest first")
    p.add_argument(
        "--limit",
        type=int,
        default=1000,
        help="at most this many (default 1000); when more follow, the command says so and names the next --after",
    )
    p.add_argument("--after", type=int, default=None, help="only those with an id above this")
    add_output_options(p)
    store_option(p)
    p.set_defaults(func=cmd_deadletters)
