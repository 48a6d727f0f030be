"""`processor changes`: the store's change feed, printed as JSON Lines (or a table on a terminal), from a
position on; with --follow, on and on as commits come, until Ctrl-C or SIGTERM (exit 0).
`processor history OBJECT`: which events made an object's state, newest first (when history is kept)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import replace
from typing import Any

FOLLOW_WAIT = 30.0  # seconds one wait for a commit lasts before the next (a stop ends it at once)


def _state_filter(text: str) -> tuple[str, str]:
    field, sep, value = text.partition("=")
    if not sep or not field:
        raise argparse.ArgumentTypeError(f"expected FIELD=VALUE, got {text!r}")
    return field, value


def cmd_changes(args: argparse.Namespace) -> int:
    from processor.cli.output import Column, Table, tail, wants_json
    from processor.config import ConfigError, load_settings
    from processor.runtime import stop_on_signal
    from processor.stores.feed import ChangeQuery, FeedExpired
    from processor.stores.registry import open_store

    if args.after < 0:
        raise ConfigError(f"--after: expected a position (a whole number >= 0), got {args.after}")
    settings = load_settings(path=args.config, store_url=args.store, log_level=args.log_level)
    as_json = wants_json(args)
    columns = [
        Column("position", lambda c: c["position"], 12),
        Column("object", lambda c: c["object"], 60),
        Column("source", lambda c: tail(c["source"], 2), 30),
        Column("type", lambda c: tail(c["event_type"], 1, "."), 24),
        Column("revision", lambda c: c["revision"], 8),
        Column("state", lambda c: c["state"], 60),
    ]

    async def main() -> int:
        import orjson

        stop = asyncio.Event()
        stop_on_signal(stop)
        store = open_store(settings.store_url, settings.feed_retention(), settings.object_history())
        await store.open()
        table: Table | None = None
        after = printed = args.after
        q = ChangeQuery(
            after=after,
            limit=500,
            source=args.source,
            prefix=args.prefix,
            event_type=args.type,
            state_equals=tuple(args.state or ()),
        )
        try:
            while not stop.is_set():
                try:
                    page = await store.changes(replace(q, after=after))
                except FeedExpired as exc:
                    print(f"processor: {exc}", file=sys.stderr)
                    return 1
                records = [c.to_json() for c in page.changes]
                if as_json:
                    sys.stdout.buffer.write(b"".join(orjson.dumps(r) + b"\n" for r in records))
                elif records:
                    if table is None:
                        table = Table(columns, records)
                        sys.stdout.writelines(table.lines)
                    else:
                        sys.stdout.writelines(table.row(r) for r in records)
                sys.stdout.flush()
                printed = records[-1]["position"] if records else printed
                after = page.next
                if len(page.changes) == q.limit:
                    continue
                if not args.follow:
                    break
                await _wait(store, after, stop)
        finally:
            await store.close()
        if after != printed:  # filters hid the last changes: say where to go on from
            print(f"processor: read up to position {after}; go on with --after {after}", file=sys.stderr)
        return 0

    return asyncio.run(main())


async def _wait(store: Any, after: int, stop: asyncio.Event) -> None:
    """Until a commit passes `after`, FOLLOW_WAIT seconds go by, or `stop` is set."""
    waiting = asyncio.ensure_future(store.wait_for_changes(after, FOLLOW_WAIT))
    stopping = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([waiting, stopping], return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (waiting, stopping):
            task.cancel()
        await asyncio.gather(waiting, stopping, return_exceptions=True)
    if waiting.done() and not waiting.cancelled() and (error := waiting.exception()) is not None:
        raise error


def cmd_history(args: argparse.Namespace) -> int:
    from processor.cli.output import Column, write_records
    from processor.config import ConfigError, load_settings
    from processor.stores.base import Query
    from processor.stores.registry import open_store

    if args.limit < 1:
        raise ConfigError(f"--limit: expected a whole number >= 1, got {args.limit}")
    settings = load_settings(path=args.config, store_url=args.store, log_level=args.log_level)

    async def main() -> int:
        store = open_store(settings.store_url)
        await store.open()
        try:
            rows = await store.query(Query(source=args.source, object=args.object, limit=1000))
            if len(rows) != 1:
                where = f" from {args.source}" if args.source else ""
                problem = "no object" if not rows else f"{len(rows)} sources have an object (add --source)"
                print(f"processor: {problem} {args.object!r}{where}", file=sys.stderr)
                return 1
            kept = await store.object_history(rows[0].source, args.object, args.limit)
        finally:
            await store.close()
        if not kept and not settings.history_per_object:
            print("processor: no history kept: set PROCESSOR_HISTORY_PER_OBJECT (history.per_object)", file=sys.stderr)
        columns = [
            Column("time", lambda e: e["time"], 30),
            Column("outcome", lambda e: e["outcome"], 8),
            Column("type", lambda e: e["event_type"].rsplit(".", 1)[-1], 24),
            Column("event", lambda e: e["event_id"], 38),
            Column("message", lambda e: f"{e['partition']}@{e['sequence_number']}" if e["partition"] else None, 16),
            Column("recorded", lambda e: e["recorded_at"], 27),
        ]
        write_records([e.to_json() for e in kept], args, columns)
        return 0

    return asyncio.run(main())


def register(sub: Any) -> None:
    from processor.cli.output import add_output_options

    p = sub.add_parser(
        "changes",
        help="the change feed: every committed change of an object, in commit order, after a position",
    )
    p.add_argument("--after", type=int, default=0, metavar="POS", help="start after this position (default 0)")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing changes as they are committed")
    p.add_argument("--source", help="only this source (resource id)")
    p.add_argument("--prefix", help="only objects whose name starts with this")
    p.add_argument("--type", help="only changes whose winner event is of this type")
    p.add_argument(
        "--state",
        action="append",
        type=_state_filter,
        metavar="FIELD=VALUE",
        help="only changes whose new state has FIELD equal to VALUE (repeatable)",
    )
    add_output_options(p)
    p.add_argument("--store", help="projection store URL (overrides PROCESSOR_STORE_URL)")
    p.set_defaults(func=cmd_changes, stops_gracefully=True)

    p = sub.add_parser("history", help="which events made an object's state, newest first (when history is kept)")
    p.add_argument("object", help="the object's name, e.g. runs/RUN_ID")
    p.add_argument("--source", help="the source (resource id) when several have this object")
    p.add_argument("--limit", type=int, default=100, help="at most this many events (default 100)")
    add_output_options(p)
    p.add_argument("--store", help="projection store URL (overrides PROCESSOR_STORE_URL)")
    p.set_defaults(func=cmd_history)
