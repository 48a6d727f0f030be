"""The worker's commands: run (with the HTTP server beside it), replay, simulate, status."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from typing import Any

import orjson

from processor.cli.output import wants_json, write_summary
from processor.config import Settings, load_settings, warn_if_any_source
from processor.runtime import stop_on_signal

log = logging.getLogger("processor")


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    return load_settings(path=args.config, store_url=args.store, log_level=args.log_level, **overrides)


def cmd_run(args: argparse.Namespace) -> int:
    from processor.worker.app import WorkerOptions, run_worker
    from processor.worker.missing import HubNotFound

    settings = _settings(args, starting_position=args.from_, consumer_group=args.consumer_group)
    warn_if_any_source(settings)

    async def main() -> int:
        stop = asyncio.Event()
        stop_on_signal(stop)
        servers: list[Any] = []
        options = WorkerOptions(on_started=_http_starter(settings, args, servers))
        try:
            await run_worker(settings, stop, options)
        except HubNotFound as exc:
            print(
                f"processor: {exc} (gave up after {settings.not_found_timeout:g}s: PROCESSOR_NOT_FOUND_TIMEOUT)",
                file=sys.stderr,
            )
            return 1
        finally:
            for server in servers:
                await server.close()
        return 0

    return asyncio.run(main())


def _http_starter(settings: Settings, args: argparse.Namespace, servers: list[Any]):
    """Start the HTTP server next to the worker (kept in `servers` to be closed after it)."""
    if getattr(args, "no_http", False):
        return None
    from processor.http.server import start_http

    async def start(worker: Any) -> None:
        servers.append(await start_http(settings, worker.store, worker))

    return start


def cmd_replay(args: argparse.Namespace) -> int:
    if args.from_.startswith("capture:"):
        from processor.cli.capture import replay_capture

        return replay_capture(args, _settings(args, replay_feeders=args.feeders))
    if args.checkpoint_live:
        from processor.config import ConfigError

        raise ConfigError("--checkpoint-live: only with --from capture:PATH")
    import signal
    from datetime import datetime

    from azure.eventhub.exceptions import EventHubError

    from processor.cli.progress import Progress
    from processor.hub.clients import consumer_client, hub_problem, starting_position
    from processor.hub.wire import Span
    from processor.replay import ReplayFailed, default_feeders, replay_partitions
    from processor.stores.registry import open_store

    settings = _settings(args, starting_position=args.from_, replay_feeders=args.feeders)
    feeders = settings.replay_feeders or default_feeders()
    warn_if_any_source(settings)

    async def main() -> int:
        store = open_store(settings.store_url, settings.feed_retention(), settings.object_history())
        await store.open()
        try:
            counts = await store.counts()
            if counts["objects"] and not args.force:
                # Not the URL: it may hold a password.
                print(
                    f"processor: the store already holds {counts['objects']} objects; replay rebuilds into a "
                    "fresh store (or pass --force to fold into this one)",
                    file=sys.stderr,
                )
                return 1
            # Each partition up to what the hub held at the start: the replay ends, whatever arrives meanwhile. One
            # that holds nothing after the starting position is left out: waiting for it would never end.
            since = starting_position(settings)
            try:
                async with consumer_client(settings, consumer_group=args.consumer_group) as client:
                    spans = {}
                    for pid in await client.get_partition_ids():
                        p = await client.get_partition_properties(pid)
                        if p["is_empty"] or since == "@latest":
                            continue
                        if isinstance(since, datetime) and p["last_enqueued_time_utc"] <= since:
                            continue
                        spans[pid] = Span(end=p["last_enqueued_sequence_number"])
            except EventHubError as exc:
                print(f"processor: replay: {hub_problem(settings, exc)}", file=sys.stderr)
                return 1
            bar = Progress("replay", total=sum(span.end + 1 for span in spans.values()))
            stop = asyncio.Event()
            signals_seen = stop_on_signal(stop)
            try:
                result = await replay_partitions(
                    settings, store, args.consumer_group, spans, feeders, stop, progress=bar.update
                )
            except ReplayFailed as exc:
                print(f"processor: replay: {exc}", file=sys.stderr)
                return 1
            finally:
                bar.close()
            if not result.complete:
                received = signals_seen.received or signal.SIGINT
                print(
                    f"processor: replay stopped by {signal.Signals(received).name} at {bar.done}/{bar.total} "
                    "messages: the projection it wrote is not complete (replay again into a fresh store)",
                    file=sys.stderr,
                )
                return 128 + received
            write_summary(result.tally.summary(), args)
            return 0
        finally:
            await store.close()

    return asyncio.run(main())


def cmd_simulate(args: argparse.Namespace) -> int:
    from processor.hub.clients import producer_client
    from processor.sim.traffic import deliver, lifecycle
    from processor.worker.simulate import publish

    if args.out:
        # The same traffic as message bodies, one per line: input for `processor ingest`, no hub needed.
        messages = deliver(
            lifecycle(args.events, seed=args.seed, workspaces=args.workspaces, accounts=args.accounts),
            seed=args.seed + 1,
            duplicate_rate=args.duplicates,
            late_rate=args.late,
        )
        with sys.stdout.buffer if args.out == "-" else open(args.out, "wb") as out:
            count = 0
            for message in messages:
                out.write(message.body + b"\n")
                count += 1
        if args.out != "-":
            print(f"wrote {count} message bodies to {args.out}", file=sys.stderr)
        return 0
    settings = _settings(args)

    async def main() -> int:
        stop = asyncio.Event()
        stop_on_signal(stop)
        messages = deliver(
            lifecycle(args.events, seed=args.seed, workspaces=args.workspaces, accounts=args.accounts),
            seed=args.seed + 1,
            duplicate_rate=args.duplicates,
            late_rate=args.late,
        )
        started = time.monotonic()
        async with producer_client(settings) as producer:
            sent = await publish(producer, messages, rate=args.rate, by_subject=args.partition_key, stop=stop)
        elapsed = time.monotonic() - started
        summary = {"sent": sent, "seconds": round(elapsed, 3), "per_second": round(sent / elapsed if elapsed else 0, 1)}
        write_summary(summary, args)
        return 0

    return asyncio.run(main())


def cmd_status(args: argparse.Namespace) -> int:
    from processor.hub.checkpoints import close_checkpoint_store, open_checkpoint_store
    from processor.hub.status import DESIGN_RATE_PER_REPLICA, keda_threshold, keda_total, partition_status

    settings = _settings(args)

    async def main() -> int:
        from azure.core.exceptions import AzureError
        from azure.eventhub.exceptions import EventHubError

        from processor.hub.clients import hub_problem

        checkpoints = None
        try:
            checkpoints = await open_checkpoint_store(settings)
            rows = await partition_status(settings, checkpoints, args.consumer_group)
        except EventHubError as exc:
            print(f"processor: status: {hub_problem(settings, exc)}", file=sys.stderr)
            return 1
        except AzureError as exc:  # the blob checkpoint store; its messages run over several lines too
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            print(f"processor: status: cannot read the checkpoints: {first}", file=sys.stderr)
            return 1
        finally:
            if checkpoints is not None:
                await close_checkpoint_store(checkpoints)
        if wants_json(args):
            for row in rows:
                _out(row)
            return 0
        print(f"{'partition':>9}  {'owner':<36}  {'checkpoint':>10}  {'last enqueued':>13}  {'lag':>8}  note")
        for r in rows:
            seq = "-" if r["checkpoint_sequence_number"] is None else r["checkpoint_sequence_number"]
            print(
                f"{r['partition']:>9}  {r['owner'] or '-':<36}  {seq:>10}  {r['last_enqueued_sequence_number']:>13}  "
                f"{r['lag']:>8}  {r['note'] or ''}".rstrip()
            )
        threshold = args.keda_threshold or keda_threshold(DESIGN_RATE_PER_REPLICA, settings)
        lags = [r["lag"] for r in rows]
        acted_on = keda_total(lags, threshold)
        print(
            f"total lag {sum(lags)}; KEDA at unprocessedEventThreshold {threshold} acts on {acted_on}: "
            f"{max(1, -(-acted_on // threshold))} replica(s) (within its min and max)"
        )
        return 0

    return asyncio.run(main())


def _out(data: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(data) + b"\n")
    sys.stdout.flush()


def register(sub: Any) -> None:
    from processor.cli.output import add_output_options

    def store_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--store", help="projection store URL (overrides PROCESSOR_STORE_URL)")

    def summary_option(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="print the closing summary as JSON")

    p = sub.add_parser("run", help="the long-lived worker: consume the hub, keep the projection, serve HTTP")
    p.add_argument("--no-http", action="store_true", help="do not start the HTTP server")
    p.add_argument("--consumer-group", help="the consumer group (overrides PROCESSOR_CONSUMER_GROUP)")
    p.add_argument(
        "--from",
        dest="from_",
        metavar="earliest|latest|TIME",
        help="where a partition without a checkpoint starts (overrides PROCESSOR_STARTING_POSITION)",
    )
    store_option(p)
    p.set_defaults(func=cmd_run, stops_gracefully=True)

    p = sub.add_parser(
        "replay", help="rebuild a projection from the hub into a fresh store (live checkpoints untouched)"
    )
    p.add_argument(
        "--from",
        dest="from_",
        default="earliest",
        metavar="earliest|TIME|capture:PATH",
        help="where to start: earliest, an ISO-8601 time, or capture:PATH (Event Hubs Capture files, a folder or "
        "blob container URL, then the hub from where they end)",
    )
    p.add_argument(
        "--consumer-group",
        default="replay",
        help="a consumer group of its own, so live workers are not disturbed (default: replay)",
    )
    p.add_argument("--force", action="store_true", help="replay into a store that already holds objects")
    p.add_argument(
        "--feeders",
        metavar="N",
        help="feeder processes reading the hub, each a fixed share of the partitions (overrides "
        "PROCESSOR_REPLAY_FEEDERS; default: the machine's cores)",
    )
    p.add_argument(
        "--checkpoint-live",
        action="store_true",
        help="with capture:PATH, at the end move the live consumer group's checkpoints (PROCESSOR_CONSUMER_GROUP) "
        "to where the rebuild stopped; a live checkpoint already there or past it is kept",
    )
    summary_option(p)
    store_option(p)
    p.set_defaults(func=cmd_replay, stops_gracefully=True)

    p = sub.add_parser("simulate", help="publish realistic Event Grid traffic to the hub")
    p.add_argument("--events", type=int, default=10_000, help="how many events to make (default 10000)")
    p.add_argument("--rate", type=float, default=None, help="messages per second (default: as fast as possible)")
    p.add_argument("--partition-key", action="store_true", help="partition key = subject, as a keyed subscription")
    p.add_argument("--workspaces", type=int, default=2, help="Azure ML workspaces publishing (default 2)")
    p.add_argument("--accounts", type=int, default=1, help="storage accounts publishing (default 1)")
    p.add_argument("--duplicates", type=float, default=0.05, help="share of events delivered twice")
    p.add_argument("--late", type=float, default=0.1, help="share of events delivered late")
    p.add_argument("--seed", type=int, default=7, help="the random seed: the same seed, the same traffic")
    p.add_argument(
        "--out",
        metavar="FILE",
        help="write the message bodies to FILE ('-' = stdout), one per line, instead of publishing",
    )
    summary_option(p)
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser(
        "status",
        help="per partition: owner, checkpoint, last enqueued sequence number, lag "
        "(as KEDA computes it), and the total KEDA would act on",
    )
    p.add_argument("--consumer-group", default=None, help="the consumer group (default PROCESSOR_CONSUMER_GROUP)")
    add_output_options(p)
    p.add_argument(
        "--keda-threshold",
        type=int,
        default=None,
        help="the ScaledObject's unprocessedEventThreshold (default: the shipped one, derived from the "
        "reorder window and checkpoint interval)",
    )
    p.set_defaults(func=cmd_status)
