"""One client connection: protocol headers, SASL, framing, and the sessions multiplexed on it.

Everything runs synchronously inside `data_received`: a frame is decoded, acted on and answered
before the next one is looked at, so there are no per-connection tasks to leak or cancel. Links
(what a session attaches) live in links.py.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from typing import TYPE_CHECKING

from . import frames as F
from .codec import DecodeError, error
from .links import Link, attach_link

if TYPE_CHECKING:
    from .server import DevHub

log = logging.getLogger("devhub")

_U32 = struct.Struct(">I")

# The hub keeps its incoming session window this wide and re-opens it at half-way: the SDK
# stops sending (BUSY) when it believes the window is closed.
SESSION_WINDOW = 10_000
OUTGOING_WINDOW = 0x7FFFFFFF
HANDLE_MAX = 0xFFFF


class Session:
    def __init__(self, conn: Connection, channel: int, begin: list) -> None:
        self.conn = conn
        self.channel = channel
        self.next_incoming_id = F.field(begin, 1, 0)
        self.incoming_window = SESSION_WINDOW
        self.received_since_flow = 0
        self.next_transfer_id = 0
        self.next_delivery_id = 0
        self.remote_incoming_window = F.field(begin, 2, 0)
        self.links: dict[int, Link] = {}
        self.blocked: set[Link] = set()
        self.accepted: list[int] = []

    # ------------------------------------------------------------------ session flow control

    def flow(
        self,
        link: Link | None = None,
        *,
        delivery_count: int | None = None,
        credit: int | None = None,
        drain: bool = False,
        echo: bool = False,
    ) -> bytes:
        return F.flow_frame(
            self.channel,
            self.next_incoming_id,
            self.incoming_window,
            self.next_transfer_id,
            OUTGOING_WINDOW,
            None if link is None else link.handle,
            delivery_count,
            credit,
            None,
            drain,
            echo,
        )

    def on_flow(self, fields: list) -> None:
        remote_next_incoming = F.field(fields, 0, 0)
        self.remote_incoming_window = remote_next_incoming + F.field(fields, 1, 0) - self.next_transfer_id
        handle = F.field(fields, 4)
        if handle is not None:
            link = self.links.get(handle)
            if link is None:
                raise ProtocolError("amqp:session:unattached-handle", f"flow for unknown handle {handle}")
            link.on_flow(fields)
        elif F.field(fields, 9, False):
            self.conn.write(self.flow())
        if self.remote_incoming_window > 0 and self.blocked:
            blocked, self.blocked = self.blocked, set()
            for link in blocked:
                link.pump()

    def on_transfer(self, fields: list, payload: memoryview) -> None:
        self.next_incoming_id += 1
        self.received_since_flow += 1
        handle = fields[0]
        link = self.links.get(handle)
        if link is None:
            raise ProtocolError("amqp:session:unattached-handle", f"transfer for unknown handle {handle}")
        link.on_transfer(fields, payload)
        if self.received_since_flow * 2 >= self.incoming_window:
            self.received_since_flow = 0
            self.conn.write(self.flow())

    def accept(self, delivery_id: int) -> None:
        """Queue an 'accepted' outcome; contiguous ids leave as one disposition per read."""
        if not self.accepted:
            self.conn.dirty_sessions.append(self)
        self.accepted.append(delivery_id)

    def flush_accepted(self) -> None:
        ids, self.accepted = self.accepted, []
        out = []
        first = last = ids[0]
        for did in ids[1:]:
            if did == last + 1:
                last = did
                continue
            out.append(F.disposition_frame(self.channel, first, last, F.ACCEPTED_STATE))
            first = last = did
        out.append(F.disposition_frame(self.channel, first, last, F.ACCEPTED_STATE))
        self.conn.write(b"".join(out))

    # ------------------------------------------------------------------ links

    def on_attach(self, fields: list) -> None:
        handle = fields[1]
        if handle in self.links:
            raise ProtocolError("amqp:session:handle-in-use", f"handle {handle} is already attached")
        attach_link(self, fields)

    def on_detach(self, fields: list) -> None:
        handle = fields[0]
        link = self.links.pop(handle, None)
        if link is None:
            return
        if not link.detach_sent:
            self.conn.write(F.detach_frame(self.channel, handle, bool(F.field(fields, 1, False))))
        link.release()

    def release(self) -> None:
        for link in self.links.values():
            link.release()
        self.links.clear()
        self.blocked.clear()


class ProtocolError(Exception):
    def __init__(self, condition: str, description: str) -> None:
        super().__init__(description)
        self.condition = condition
        self.description = description


class Connection(asyncio.Protocol):
    def __init__(self, hub: DevHub) -> None:
        self.hub = hub
        self.transport: asyncio.Transport | None = None
        self.state = "header"  # header -> sasl -> amqp-header -> open -> frames -> closed
        self.sessions: dict[int, Session] = {}
        self.remote_max_frame_size = 512
        self.dirty_sessions: list[Session] = []
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._need = 8
        self._heartbeat: asyncio.TimerHandle | None = None
        self._heartbeat_interval = 0.0

    # ------------------------------------------------------------------ transport callbacks

    def connection_made(self, transport) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self.hub._connections.add(self)

    def connection_lost(self, exc) -> None:
        self.state = "closed"
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        for session in self.sessions.values():
            session.release()
        self.sessions.clear()
        self.hub._connections.discard(self)

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._buffered += len(data)
        if self._buffered < self._need:
            return
        buf = self._chunks[0] if len(self._chunks) == 1 else b"".join(self._chunks)
        try:
            pos = self._process(buf)
        except ProtocolError as exc:
            self.close(exc.condition, exc.description)
            return
        except (DecodeError, IndexError, KeyError, TypeError, ValueError, struct.error) as exc:
            log.warning("devhub: malformed frame from client: %r", exc)
            self.close("amqp:decode-error", f"DevHub could not decode a frame: {exc}")
            return
        finally:
            for session in self.dirty_sessions:
                session.flush_accepted()
            self.dirty_sessions.clear()
        rest = buf[pos:]
        self._chunks = [rest] if rest else []
        self._buffered = len(rest)

    # ------------------------------------------------------------------ parsing

    def _process(self, buf: bytes) -> int:
        pos = 0
        view = memoryview(buf)
        size_total = len(buf)
        while self.state != "closed":
            if self.state in ("header", "amqp-header"):
                if size_total - pos < 8:
                    self._need = 8
                    return pos
                self._on_protocol_header(bytes(buf[pos : pos + 8]))
                pos += 8
                continue
            if size_total - pos < 8:
                self._need = 8
                return pos
            size = _U32.unpack_from(buf, pos)[0]
            if size < 8 or size > self.hub.max_frame_size:
                raise ProtocolError("amqp:connection:framing-error", f"frame size {size} out of range")
            if size_total - pos < size:
                self._need = size
                return pos
            doff = buf[pos + 4]
            frame_type = buf[pos + 5]
            channel = buf[pos + 6] << 8 | buf[pos + 7]
            body_start = pos + doff * 4
            end = pos + size
            pos = end
            if body_start == end:
                continue  # empty frame: the peer's heartbeat
            code, fields, payload = F.decode_performative(view[body_start:end])
            if frame_type == F.FRAME_SASL:
                self._on_sasl(code, fields)
            else:
                self._on_frame(channel, code, fields, payload)
        return size_total

    def _on_protocol_header(self, header: bytes) -> None:
        if self.state == "header" and header == F.SASL_HEADER:
            self.write(F.SASL_HEADER + F.sasl_mechanisms())
            self.state = "sasl"
        elif header == F.AMQP_HEADER:
            self.write(F.AMQP_HEADER)
            self.state = "open"
        else:
            # Answer with the header we do speak, as the spec asks, then hang up.
            self.write(F.AMQP_HEADER)
            self.state = "closed"
            assert self.transport is not None
            self.transport.close()

    def _on_sasl(self, code: int, fields: list) -> None:
        if code == F.SASL_INIT:
            # ANONYMOUS is all we offer; credentials are not checked (loopback development hub).
            self.write(F.sasl_outcome(0))
            self.state = "amqp-header"

    def _on_frame(self, channel: int, code: int, fields: list, payload: memoryview) -> None:
        if code == F.TRANSFER:
            session = self.sessions.get(channel)
            if session is None:
                raise ProtocolError("amqp:connection:framing-error", f"transfer on unmapped channel {channel}")
            session.on_transfer(fields, payload)
        elif code == F.FLOW:
            self._session(channel).on_flow(fields)
        elif code == F.DISPOSITION:
            pass  # the hub sends pre-settled deliveries; client outcomes carry no information for it
        elif code == F.ATTACH:
            self._session(channel).on_attach(fields)
        elif code == F.DETACH:
            self._session(channel).on_detach(fields)
        elif code == F.BEGIN:
            self._on_begin(channel, fields)
        elif code == F.END:
            session = self.sessions.pop(channel, None)
            if session is not None:
                session.release()
                self.write(F.end_frame(channel))
        elif code == F.OPEN:
            self._on_open(fields)
        elif code == F.CLOSE:
            self.write(F.close_frame())
            self._shutdown()
        else:
            raise ProtocolError("amqp:not-implemented", f"performative 0x{code:02x} is not supported by DevHub")

    def _session(self, channel: int) -> Session:
        session = self.sessions.get(channel)
        if session is None:
            raise ProtocolError("amqp:connection:framing-error", f"frame on unmapped channel {channel}")
        return session

    def _on_open(self, fields: list) -> None:
        self.remote_max_frame_size = F.field(fields, 2, 0xFFFFFFFF)
        self.write(F.open_frame(self.hub.container_id, self.hub.max_frame_size, 0xFFFF))
        self.state = "frames"
        idle_ms = F.field(fields, 4)
        if idle_ms:
            # The peer wants traffic at least this often; answer with empty frames at half the period.
            self._heartbeat_interval = idle_ms / 2000
            self._schedule_heartbeat()

    def _schedule_heartbeat(self) -> None:
        loop = asyncio.get_running_loop()
        self._heartbeat = loop.call_later(self._heartbeat_interval, self._beat)

    def _beat(self) -> None:
        if self.state == "closed":
            return
        self.write(F.EMPTY_FRAME)
        self._schedule_heartbeat()

    def _on_begin(self, channel: int, fields: list) -> None:
        if channel in self.sessions:
            raise ProtocolError("amqp:connection:framing-error", f"channel {channel} already has a session")
        session = Session(self, channel, fields)
        self.sessions[channel] = session
        # The hub's channel number mirrors the client's: one session per channel either way.
        self.write(F.begin_frame(channel, channel, 0, SESSION_WINDOW, OUTGOING_WINDOW, HANDLE_MAX))

    # ------------------------------------------------------------------ output / shutdown

    def write(self, data: bytes) -> None:
        if self.transport is not None and self.state != "closed":
            self.transport.write(data)

    def writelines(self, chunks: list[bytes]) -> None:
        if self.transport is not None and self.state != "closed":
            self.transport.writelines(chunks)

    def close(self, condition: str | None = None, description: str | None = None) -> None:
        """Close politely with an AMQP error, so the client learns why."""
        if self.state == "closed":
            return
        if self.state == "frames":
            self.write(F.close_frame(error(condition, description) if condition else None))
        self._shutdown()

    def _shutdown(self) -> None:
        for session in self.sessions.values():
            session.release()
        self.sessions.clear()
        self.state = "closed"
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop the TCP connection with no AMQP goodbye, like a network failure."""
        for session in self.sessions.values():
            session.release()
        self.sessions.clear()
        self.state = "closed"
        if self.transport is not None:
            self.transport.abort()
