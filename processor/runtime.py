"""Process plumbing for every long-running command: stop requests (SIGTERM, SIGINT) honoured from the first
instant of the process, and the logging set-up (text lines, or one JSON object per line for log collectors).

The command line installs the handler before its imports (a quarter of a second of them) and its parsing;
an event loop attaches its stop event later. A signal that came before is kept and sets the event as soon
as it is attached, so a SIGTERM at any instant takes the graceful path instead of the default death (143).
Imports nothing of the processor (and nothing heavy): it runs before everything else.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # asyncio alone takes 30 ms to import: not before the handler is in place
    import asyncio

SIGNALS = (signal.SIGTERM, signal.SIGINT)
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FORMATS = ("text", "json")
# Record attributes a log call may set (`extra={"partition": pid}`) that a JSON line carries as fields of its own,
# for a log query to filter on (Container Insights: `| where partition == "3"`).
CONTEXT_FIELDS = ("partition", "object", "source", "consumer_group", "eventhub")


class StopSignals:
    """The process's handler for SIGTERM and SIGINT: records the first and sets every attached stop event."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.previous: dict[int, Any] = {}
        self._events: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def __call__(self, signum: int, frame: Any) -> None:
        if self.received is None:
            self.received = signum
        for loop, event in self._events:
            try:
                # A plain signal handler, not loop.add_signal_handler: asyncio gives the default action back when
                # its loop closes, and a SIGTERM during the interpreter's exit would then still end in 143.
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # that loop is closed: what it ran has ended already
                pass

    def attach(self, stop: asyncio.Event) -> None:
        import asyncio

        self._events.append((asyncio.get_running_loop(), stop))
        if self.received is not None:
            stop.set()


_installed: StopSignals | None = None


def install_stop_signals() -> StopSignals:
    """Catch SIGTERM and SIGINT from now on (once per process; later calls return the same handler)."""
    global _installed
    if _installed is None:
        handler = StopSignals()
        for sig in SIGNALS:
            handler.previous[sig] = signal.signal(sig, handler)
        _installed = handler
    return _installed


def restore_signals() -> None:
    """Give the signals their previous handling back (a command that does not stop gracefully), acting on one
    that came meanwhile as that handling would have."""
    global _installed
    handler, _installed = _installed, None
    if handler is None:
        return
    for sig, previous in handler.previous.items():
        signal.signal(sig, previous if previous is not None else signal.SIG_DFL)
    if handler.received is not None:
        os.kill(os.getpid(), handler.received)


def stop_on_signal(stop: asyncio.Event) -> StopSignals:
    """Set `stop` on SIGTERM or SIGINT, including one received before this call; from the running loop."""
    handler = install_stop_signals()
    handler.attach(stop)
    return handler


class JsonLines(logging.Formatter):
    """One JSON object per record, on one line: time (UTC, ISO 8601, milliseconds), level, logger, message, the
    context fields the record carries, and the traceback as `exception` (newlines escaped, so still one line)."""

    def format(self, record: logging.LogRecord) -> str:
        seconds = int(record.created)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        doc: dict[str, Any] = {
            "time": f"{stamp}.{int((record.created - seconds) * 1000):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_FIELDS:
            value = record.__dict__.get(key)
            if value is not None:
                doc[key] = value
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


def configure_logging(level: str | int, log_format: str = "text") -> None:
    """Log records at `level` and above to stderr, one line each (`log_format` text or json); the Azure SDK's at
    WARNING and above."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines() if log_format == "json" else logging.Formatter(LOG_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])
    # The SDK logs every link attach and load-balancing round at INFO; ours say what matters.
    logging.getLogger("azure").setLevel(logging.WARNING)
