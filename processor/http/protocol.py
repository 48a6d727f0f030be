"""Connection rules under aiohttp's request handler: how long a request head may take, how long an idle
connection stays, how many connections are open, and how requests that are not HTTP are logged.

aiohttp bounds the size of a request head itself (8190 bytes a line, 128 header lines) and, with its
keep-alive timer, the wait for a complete request on a connection that is idle; `Limits.runner_options`
sets that timer. What aiohttp has no knob for lives here, in a protocol wrapped around each of its handlers:

- head timeout: a request head must be complete `head_timeout` seconds after the connection opened, or after
  the first byte of a later request arrived (a slowloris client dribbles header lines and would only meet the
  idle bound, reset by nothing). Like Go's ReadHeaderTimeout next to its IdleTimeout.
- connection cap: at `max_connections` the oldest connection is cut to make room. Refusing the newcomer
  instead would let a few slow clients lock kubelet's probes out, and failed liveness probes restart the pod.

Imports only aiohttp.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

log = logging.getLogger(__name__)

_HEAD_END = re.compile(rb"\n\r?\n")  # the blank line after the headers (aiohttp also takes bare LF lines)
CUT_WARNING_INTERVAL = 60.0  # seconds between warnings that the cap cut connections


@dataclass(frozen=True)
class Limits:
    head_timeout: float = 10.0
    # Longer than the 60 s upstream idle timeout of ingress-nginx and of the usual cloud load balancers: a
    # proxy that pools connections then drops one before this server does, never sending on a closed one.
    idle_timeout: float = 75.0
    max_connections: int = 100

    def runner_options(self) -> dict[str, Any]:
        """Keyword arguments for web.AppRunner (handed on to each aiohttp request handler)."""
        return {"keepalive_timeout": self.idle_timeout, "logger": ServerLog(logging.getLogger("aiohttp.server"), {})}


class ServerLog(logging.LoggerAdapter):  # type: ignore[type-arg,unused-ignore]
    """aiohttp's server logger, except for a request it could not parse (an over-long line, not HTTP at all):
    any client can send one, so it is one WARNING line, not an ERROR with a traceback per request."""

    def exception(self, msg: object, *args: object, exc_info: Any = True, **kwargs: Any) -> None:
        if isinstance(exc_info, HttpProcessingError):
            what = str(msg) % args if args else str(msg)
            log.warning("%s, answered %d: %.200r", what, exc_info.code, exc_info.message)
            return
        self.logger.exception(msg, *args, exc_info=exc_info, **kwargs)


def _cut(transport: asyncio.BaseTransport) -> None:
    # close() waits until the write buffer drains, which a client that stopped reading never lets happen.
    if isinstance(transport, asyncio.WriteTransport) and transport.get_write_buffer_size():
        transport.abort()
    else:
        transport.close()


class Connection(asyncio.Protocol):
    """One connection: aiohttp's handler inside, the head timer and the gate's bookkeeping around it."""

    __slots__ = ("inner", "gate", "transport", "timer", "tail", "cut")

    def __init__(self, inner: asyncio.Protocol, gate: Gate):
        self.inner = inner
        self.gate = gate
        self.transport: asyncio.BaseTransport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.tail = b""  # the last bytes of an unfinished head: its blank line may straddle two reads
        self.cut = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.cut:  # the cap cut it between accept and start
            cast(asyncio.Transport, transport).abort()
            return
        self.transport = transport
        self._head_starts()
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._watch(data)
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_ends()
        self.gate.forget(self)
        if self.transport is not None:
            self.inner.connection_lost(exc)

    def close(self) -> None:
        self.cut = True
        self._head_ends()
        if self.transport is not None:
            _cut(self.transport)

    def _watch(self, data: bytes) -> None:
        while data:
            if self.timer is None:  # the first byte of a request
                self._head_starts()
            seen = self.tail + data
            end = _HEAD_END.search(seen)
            if end is None:
                self.tail = seen[-2:]
                return
            self._head_ends()
            data = seen[end.end() :]  # a pipelined request begins here

    def _head_starts(self) -> None:
        self._head_ends()
        self.timer = self.gate.loop.call_later(self.gate.limits.head_timeout, self._head_overdue)

    def _head_ends(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.tail = b""

    def _head_overdue(self) -> None:
        self.timer = None
        log.debug("closing a connection whose request head took over %ss", self.gate.limits.head_timeout)
        self.close()


class Gate:
    """The protocol factory of the listening socket: counts connections, cuts the oldest at the cap."""

    def __init__(
        self, handler_factory: Callable[[], asyncio.Protocol], limits: Limits, loop: asyncio.AbstractEventLoop
    ):
        self.handler_factory = handler_factory
        self.limits = limits
        self.loop = loop
        self.open: dict[Connection, None] = {}  # insertion order: oldest first
        self._cut_since_warning = 0
        self._warned_at: float | None = None

    def __call__(self) -> Connection:
        while len(self.open) >= self.limits.max_connections:
            oldest = next(iter(self.open))
            self.forget(oldest)
            oldest.close()
            self._count_cut()
        connection = Connection(self.handler_factory(), self)
        self.open[connection] = None
        return connection

    def forget(self, connection: Connection) -> None:
        self.open.pop(connection, None)

    def _count_cut(self) -> None:
        self._cut_since_warning += 1
        now = self.loop.time()
        if self._warned_at is None or now - self._warned_at >= CUT_WARNING_INTERVAL:
            log.warning(
                "%d open connections (the cap): cut the oldest to admit new ones (%d since the last warning)",
                self.limits.max_connections,
                self._cut_since_warning,
            )
            self._warned_at, self._cut_since_warning = now, 0


class LimitedSite(web.BaseSite):
    """A TCP site whose connections pass through a Gate."""

    __slots__ = ("_host", "_port", "_limits", "gate")

    def __init__(self, runner: web.BaseRunner, host: str, port: int, limits: Limits):
        super().__init__(runner)
        self._host = host
        self._port = port
        self._limits = limits
        self.gate: Gate | None = None

    @property
    def name(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else (self._host or "0.0.0.0")
        return f"http://{host}:{self._port}"

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None, "runner.setup() comes first"
        loop = asyncio.get_running_loop()
        self.gate = Gate(server, self._limits, loop)
        self._server = await loop.create_server(self.gate, self._host or None, self._port)
