"""The `processor` command: the top layer, composing the adapters into commands.

`main` parses and runs a command: projection.py (ingest, export, show, deadletters), worker.py (run, replay,
simulate, status), serve.py (the HTTP API over a store), feed.py (changes). May import every layer below;
nothing imports it but the `devhub` development tool.
"""

from __future__ import annotations

# Only light imports here: `main` installs the signal handlers first, and everything heavier comes after.
import argparse
import logging
import sys
from collections.abc import Callable

from processor import runtime

log = logging.getLogger("processor")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="processor",
        description="Azure Event Grid events on an Event Hub -> the latest state of every object (run, model, "
        "endpoint, drift monitor, blob). Settings: config/processor.toml and PROCESSOR_* variables.",
        epilog="Start with `./dev run` in a clone (the demo: no Azure needed), then `processor run`.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}", help="print the version")
    add_global_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # The commands' modules import settings, stores and adapters: after the signal handlers, not before.
    from processor.cli import completion, feed, projection, serve, worker

    for module in (projection, worker, serve, completion, feed):
        module.register(sub)
    for command in sub.choices.values():
        add_global_options(command)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("processor")
    except PackageNotFoundError:  # run from a source tree that was never installed
        from processor import __version__

        return __version__


# Options every command takes, before or after its name: `processor --config f.toml run` and `processor run
# --config f.toml` mean the same. (dest, flags, metavar, help)
GLOBAL_OPTIONS = (
    ("config", ("--config",), "FILE", "TOML settings file (default: $PROCESSOR_CONFIG, else config/processor.toml)"),
    ("store", ("--store",), "URL", "projection store URL (overrides PROCESSOR_STORE_URL)"),
    ("log_level", ("--log-level",), "LEVEL", "DEBUG, INFO, WARNING or ERROR (overrides PROCESSOR_LOG_LEVEL)"),
)


def add_global_options(parser: argparse.ArgumentParser, top: bool = False) -> None:
    """Add the global options to `parser`, or make its own of the same name global. Their default is SUPPRESS
    below the top: a subcommand's parser writes its defaults over what the top parser read, and would otherwise
    undo `processor --store URL export`; the top parser's defaults (None) stand when neither gives one."""
    defaults: dict[str, None] = {}
    for dest, flags, metavar, help_text in GLOBAL_OPTIONS:
        existing = [a for a in parser._actions if a.dest == dest]  # argparse has no public lookup
        if existing:
            existing[0].default = argparse.SUPPRESS
        else:
            parser.add_argument(*flags, dest=dest, metavar=metavar, help=help_text, default=argparse.SUPPRESS)
        defaults[dest] = None
    if top:
        parser.set_defaults(**defaults)


def main(argv: list[str] | None = None) -> int:
    return run_command_line(build_parser, argv)


def run_command_line(build: Callable[[], argparse.ArgumentParser], argv: list[str] | None = None) -> int:
    """Parse `argv` with the parser `build()` makes, set logging up and run the chosen command (its `func`), turning
    errors into one line and an exit code, each message led by the parser's name. The `devhub` command line (the
    development tool, on top of this package) runs through here too, so both behave alike."""
    # First of all, before the imports below and the parsing: a SIGTERM in the first instants of `processor run`
    # must stop it gracefully (exit 0), not kill it (143). Commands that do not stop gracefully give it back.
    runtime.install_stop_signals()
    from processor.config import ConfigError, load_log_format, load_log_level
    from processor.stores.base import StoreError

    parser = build()
    name = parser.prog
    args = parser.parse_args(argv)
    if not getattr(args, "stops_gracefully", False):
        runtime.restore_signals()
    try:
        config = getattr(args, "config", None)
        runtime.configure_logging(
            load_log_level(path=config, flag=getattr(args, "log_level", None)), load_log_format(path=config)
        )
        return int(args.func(args) or 0)
    except BrokenPipeError:
        # `processor export | head`: the reader has what it wanted.
        sys.stderr.close()
        return 0
    except ConfigError as exc:
        print(f"{name}: bad setting: {exc}", file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"{name}: store failed: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"{name}: {exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""), file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
