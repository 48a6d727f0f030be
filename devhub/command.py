"""The `devhub` command (also `python -m devhub`): `serve` runs a local hub until SIGINT/SIGTERM, `admin` injects
faults into a running one, `demo` runs the whole product on an in-process hub (what `./dev run` runs).

Settings errors, exit codes, the log level and SIGTERM are handled as for `processor`: `main` goes through
`processor.cli.run_command_line`. May import the rest of devhub and `processor`; `processor` never imports this.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import signal
import sys

from processor.cli import run_command_line

from . import admin
from .server import DEFAULT_PORT, DevHub, HubSpec

DEFAULT_ADMIN_PORT = DEFAULT_PORT + 1
# `replay` as well as the service's `$Default`: `processor replay` reads on its own group, `replay`
# by default, and the README's path (`devhub serve`, then `processor replay`) must work as written.
DEFAULT_CONSUMER_GROUPS = ("$Default", "replay")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="devhub",
        description="A local Azure Event Hubs endpoint (AMQP 1.0, loopback) for the real azure-eventhub SDK, and "
        "the processor's demo on it. Development only: no TLS, no token checks.",
        epilog="`devhub serve` prints a connection string for PROCESSOR_EVENTHUB_CONNECTION_STRING.",
    )
    parser.add_argument("--config", help="TOML settings file (default: $PROCESSOR_CONFIG, else config/processor.toml)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("serve", help="run a local Event Hubs endpoint (AMQP, loopback)")
    run.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    run.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"AMQP port (default {DEFAULT_PORT})")
    run.add_argument("--partitions", type=int, default=4, help="partitions per hub (default 4)")
    run.add_argument(
        "--hub",
        action="append",
        dest="hubs",
        metavar="NAME",
        help="event hub name; repeat for several (default: events)",
    )
    run.add_argument(
        "--consumer-group",
        action="append",
        dest="consumer_groups",
        metavar="CG",
        help="consumer group besides the default ones; repeat for several "
        f"({' and '.join(DEFAULT_CONSUMER_GROUPS)} always exist; names are case-insensitive)",
    )
    run.add_argument("--data-dir", help="keep partition logs here so they survive a restart")
    run.add_argument("--retention-events", type=int, help="keep at most this many events per partition")
    run.add_argument("--retention-seconds", type=float, help="drop events older than this")
    run.add_argument(
        "--max-message-size", type=int, default=1024 * 1024, help="largest message accepted, bytes (default 1 MiB)"
    )
    run.add_argument(
        "--admin-port",
        type=int,
        default=DEFAULT_ADMIN_PORT,
        help=f"loopback port of the fault-injection channel (default {DEFAULT_ADMIN_PORT}; -1 = off)",
    )
    run.set_defaults(func=cmd_serve)

    adm = sub.add_parser("admin", help="inject faults into a running devhub")
    adm.add_argument("--host", default="127.0.0.1", help="the devhub's address (default 127.0.0.1)")
    adm.add_argument(
        "--admin-port",
        type=int,
        default=DEFAULT_ADMIN_PORT,
        help=f"its fault-injection port (default {DEFAULT_ADMIN_PORT})",
    )
    ops = adm.add_subparsers(dest="admin_op", required=True)
    ops.add_parser("status", help="print every partition's properties")
    ops.add_parser("drop-connections", help="cut every client connection")
    detach = ops.add_parser("detach", help="detach links with an AMQP error")
    detach.add_argument(
        "--error", default="com.microsoft:server-busy", help="AMQP error condition (default com.microsoft:server-busy)"
    )
    detach.add_argument("--hub", help="only this hub's links (default: every hub)")
    detach.add_argument("--partition", help="only this partition's links (default: every partition)")
    for name, text in (
        ("pause", "stop deliveries from a partition"),
        ("resume", "resume a paused partition"),
        ("slow", "deliver at most one batch per --delay seconds"),
    ):
        op = ops.add_parser(name, help=text)
        op.add_argument("--hub", required=True, help="the event hub")
        op.add_argument("--partition", required=True, help="the partition id")
        if name == "slow":
            op.add_argument("--delay", type=float, required=True, help="seconds; 0 = back to normal")
    adm.set_defaults(func=cmd_admin)

    demo = sub.add_parser("demo", help="everything on this machine: local hub, simulated traffic, worker, SQLite")
    demo.add_argument("--duration", type=float, default=20.0, help="seconds to run (0 = until Ctrl-C)")
    demo.add_argument("--rate", type=float, default=400.0, help="simulated messages per second")
    demo.add_argument("--data-dir", default="data/demo", help="where the demo keeps its SQLite files")
    demo.add_argument("--http", default="127.0.0.1:8080", help="address of the HTTP API and dashboard")
    demo.set_defaults(func=cmd_demo, stops_gracefully=True)
    return parser


def cmd_serve(args: argparse.Namespace) -> int:
    groups: dict[str, str] = {}
    for group in DEFAULT_CONSUMER_GROUPS + tuple(args.consumer_groups or ()):
        groups.setdefault(group.lower(), group)  # case-insensitive, as in the service
    specs = [
        HubSpec(
            name=name,
            partitions=args.partitions,
            consumer_groups=tuple(groups.values()),
            retention_events=args.retention_events,
            retention_seconds=args.retention_seconds,
        )
        for name in (args.hubs or ["events"])
    ]
    admin_port = None if args.admin_port < 0 else args.admin_port
    hub = DevHub(
        specs,
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        max_message_size=args.max_message_size,
        admin_port=admin_port,
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with hub:
            for spec in specs:
                print(hub.connection_string(spec.name), flush=True)
            print(f"# consumer groups: {', '.join(groups.values())}", flush=True)
            if hub.admin_port is not None:
                print(f"# admin channel: 127.0.0.1:{hub.admin_port}", flush=True)
            await stop.wait()

    try:
        asyncio.run(main())
    except OSError as exc:
        print(f"devhub: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


def cmd_admin(args: argparse.Namespace) -> int:
    op = args.admin_op
    params: dict = {}
    if op == "detach":
        params = {"error": args.error, "hub": args.hub, "partition": args.partition}
    elif op in ("pause", "resume", "slow"):
        params = {"hub": args.hub, "partition": args.partition}
        if op == "slow":
            params["delay_seconds"] = args.delay
    name = {
        "drop-connections": "drop_connections",
        "detach": "detach_links",
        "pause": "pause_partition",
        "resume": "resume_partition",
        "slow": "slow_partition",
        "status": "status",
    }[op]
    try:
        reply = asyncio.run(admin.call(args.host, args.admin_port, name, **params))
    except OSError as exc:
        print(f"devhub admin: no devhub admin channel at {args.host}:{args.admin_port}: {exc}", file=sys.stderr)
        return 1
    if not reply.get("ok"):
        print(f"devhub admin: {reply.get('error')}", file=sys.stderr)
        return 1
    result = reply.get("result")
    print("ok" if result is None else json.dumps(result, indent=2))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from processor.config import ConfigError

    if not (math.isfinite(args.duration) and args.duration >= 0):
        raise ConfigError(f"--duration: expected a number of seconds >= 0 (0 = until Ctrl-C), got {args.duration:g}")
    if not (math.isfinite(args.rate) and args.rate > 0):
        raise ConfigError(f"--rate: expected a number of messages per second > 0, got {args.rate:g}")
    from .demo import run_demo

    return asyncio.run(run_demo(args))


def main(argv: list[str] | None = None) -> int:
    return run_command_line(build_parser, argv)
