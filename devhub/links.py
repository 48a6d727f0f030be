"""Links: what a client attaches to, and how each kind moves messages.

* ProducerLink  - client sender to `<hub>` or `<hub>/Partitions/<id>`: appends to partition logs.
* ConsumerLink  - client receiver from `<hub>/ConsumerGroups/<cg>/Partitions/<id>`: streams the log.
* RequestLink / ReplyLink - the `$cbs` and `$management` request/response pairs (nodes.py answers).

A refused attach is answered with an attach (so the SDK's link reaches a state where it reads the
error) followed at once by a detach carrying the AMQP error: the SDK then raises that condition.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from . import frames as F
from . import nodes
from .codec import DecodeError, Described, UInt, described_list, error
from .message import BATCH_FORMAT, delivered, delivery_annotations, message_partition_key, split_batch

if TYPE_CHECKING:
    from .connection import Session
    from .log import Hub, PartitionLog

EPOCH = "com.microsoft:epoch"
RUNTIME_METRIC = "com.microsoft:enable-receiver-runtime-metric"
SELECTOR_FILTER = "apache.org:selector-filter:string"
PRODUCER_CREDIT = 1000

_SELECTOR = re.compile(
    r"^\s*amqp\.annotation\.x-opt-(offset|sequence-number|enqueued-time)\s*(>=|>)\s*'([^']*)'\s*$", re.IGNORECASE
)


class Refused(Exception):
    def __init__(self, condition: str, description: str) -> None:
        super().__init__(description)
        self.condition = condition
        self.description = description


def path_segments(address: Any) -> list[str]:
    """`amqps://host:port/hub/Partitions/0` -> ['hub', 'Partitions', '0'] (host part dropped)."""
    if not isinstance(address, str):
        return []
    if "://" in address:
        address = address.split("://", 1)[1]
        address = address.split("/", 1)[1] if "/" in address else ""
    return [s for s in address.split("/") if s]


def terminus_address(terminus: Any) -> str | None:
    if isinstance(terminus, Described) and isinstance(terminus.value, list) and terminus.value:
        address = terminus.value[0]
        return address if isinstance(address, str) else None
    return None


def attach_link(session: Session, fields: list) -> None:
    name, handle, role = fields[0], fields[1], fields[2]
    src, tgt = F.field(fields, 5), F.field(fields, 6)
    client_is_sender = role is F.ROLE_SENDER or role == 0
    address = terminus_address(tgt if client_is_sender else src)
    segments = path_segments(address)
    node = segments[-1].lower() if segments else ""
    try:
        if node in ("$cbs", "$management"):
            cls = RequestLink if client_is_sender else ReplyLink
            link: Link = cls(session, name, handle, node)
        elif client_is_sender:
            link = ProducerLink.create(session, name, handle, segments, fields)
        else:
            link = ConsumerLink.create(session, name, handle, segments, fields)
    except Refused as exc:
        refuse(session, name, handle, client_is_sender, src, tgt, exc.condition, exc.description)
        return
    link.source, link.target = src, tgt
    session.links[handle] = link
    link.attached(fields)


def refuse(
    session: Session,
    name: str,
    handle: int,
    client_is_sender: bool,
    src: Any,
    tgt: Any,
    condition: str,
    description: str,
) -> None:
    conn = session.conn
    conn.write(
        F.attach_frame(
            session.channel,
            name,
            handle,
            not client_is_sender,
            src,
            tgt,
            initial_delivery_count=None if client_is_sender else 0,
        )
    )
    # Keep the handle reserved until the client answers our detach.
    session.links[handle] = Link(session, name, handle)
    session.links[handle].detach_sent = True
    conn.write(F.detach_frame(session.channel, handle, True, error(condition, description)))


class Link:
    """Common state; also stands in for refused links until the client's detach arrives."""

    def __init__(self, session: Session, name: str, handle: int) -> None:
        self.session = session
        self.conn = session.conn
        self.name = name
        self.handle = handle
        self.detach_sent = False
        self.source: Any = None
        self.target: Any = None
        self.hub_name: str | None = None
        self.partition: str | None = None

    def attached(self, fields: list) -> None:
        pass

    def on_flow(self, fields: list) -> None:
        pass

    def on_transfer(self, fields: list, payload) -> None:
        raise DecodeError("transfer on a link the client does not send on")

    def pump(self) -> None:
        pass

    def detach(self, condition: str, description: str) -> None:
        """Server-initiated detach with an error (faults, link stealing)."""
        if self.detach_sent:
            return
        self.detach_sent = True
        self.release()
        self.conn.write(F.detach_frame(self.session.channel, self.handle, True, error(condition, description)))

    def release(self) -> None:
        """Drop every reference the hub holds to this link."""
        self.session.blocked.discard(self)


# ---------------------------------------------------------------------------------------- producers


class ProducerLink(Link):
    @classmethod
    def create(cls, session: Session, name: str, handle: int, segments: list[str], fields: list) -> ProducerLink:
        devhub = session.conn.hub
        if not segments:
            raise Refused("amqp:not-found", "DevHub: a sender link needs a target address naming an event hub")
        hub = devhub.find_hub(segments[0])
        partition = None
        if len(segments) == 3 and segments[1].lower() == "partitions":
            partition = segments[2]
        elif len(segments) != 1:
            raise Refused("amqp:not-found", f"DevHub: unsupported target address '/{'/'.join(segments)}'")
        if hub is None:
            raise Refused("amqp:not-found", devhub.hub_not_found(segments[0]))
        if partition is not None and partition not in hub.partitions:
            raise Refused("amqp:not-found", f"DevHub: partition '{partition}' does not exist in '{hub.name}'.")
        link = cls(session, name, handle)
        link.hub = hub
        link.hub_name = hub.name
        link.partition = partition
        return link

    def __init__(self, session: Session, name: str, handle: int) -> None:
        super().__init__(session, name, handle)
        self.hub: Hub
        self.delivery_count = 0
        self.credit = 0
        self._parts: list[bytes] = []
        self._size = 0
        self._first: list | None = None

    def attached(self, fields: list) -> None:
        self.delivery_count = F.field(fields, 9, 0)
        devhub = self.conn.hub
        self.conn.write(
            F.attach_frame(
                self.session.channel,
                self.name,
                self.handle,
                F.ROLE_RECEIVER,
                self.source,
                self.target,
                max_message_size=devhub.max_message_size,
            )
        )
        devhub._producers.add(self)
        self._grant()

    def _grant(self) -> None:
        self.credit = PRODUCER_CREDIT
        self.conn.write(self.session.flow(self, delivery_count=self.delivery_count, credit=self.credit))

    def on_flow(self, fields: list) -> None:
        if F.field(fields, 9, False):  # echo
            self.conn.write(self.session.flow(self, delivery_count=self.delivery_count, credit=self.credit))

    def on_transfer(self, fields: list, payload) -> None:
        if self.detach_sent:
            # Sent before the client saw our detach: drop it, the SDK will resend on a new link.
            return
        if self._first is None:
            self._first = fields
        more = F.field(fields, 5, False)
        if F.field(fields, 9, False):  # aborted: forget what arrived so far
            self._reset()
            return
        self._size += len(payload)
        if self._size <= self.conn.hub.max_message_size:
            self._parts.append(bytes(payload) if more or self._parts else payload)
        if more:
            return
        first = self._first
        size = self._size
        parts = self._parts
        self._reset()
        self.delivery_count += 1
        self.credit -= 1
        if self.credit * 2 < PRODUCER_CREDIT:
            self._grant()
        delivery_id = first[1]
        settled = F.field(first, 4, False)
        outcome = self._store(first, parts, size)
        if settled:
            return
        if outcome is None:
            self.session.accept(delivery_id)
        else:
            state = F.rejected_state(error(*outcome))
            self.conn.write(F.disposition_frame(self.session.channel, delivery_id, delivery_id, state))

    def _reset(self) -> None:
        self._first = None
        self._parts = []
        self._size = 0

    def _store(self, first: list, parts: list, size: int) -> tuple[str, str] | None:
        """Append the delivery; return (condition, description) when it must be rejected."""
        devhub = self.conn.hub
        limit = devhub.max_message_size
        if size > limit:
            return (
                "amqp:link:message-size-exceeded",
                f"The received message (delivery-id:{first[1]}, size:{size} bytes) exceeds the limit "
                f"({limit} bytes) currently allowed on the link. (DevHub)",
            )
        payload = parts[0] if len(parts) == 1 else b"".join(parts)
        try:
            if F.field(first, 3, 0) == BATCH_FORMAT:
                messages, key = split_batch(payload)
            else:
                messages, key = [payload], message_partition_key(payload)
        except (DecodeError, IndexError, ValueError) as exc:
            return ("amqp:decode-error", f"DevHub could not decode the message: {exc}")
        partition = self.partition
        if partition is None:
            partition = devhub.partition_for_key(self.hub, key) if key is not None else self.hub.next_round_robin()
        try:
            self.hub.partitions[partition].append(messages, key)
        except (DecodeError, IndexError, ValueError) as exc:
            return ("amqp:decode-error", f"DevHub could not decode the message: {exc}")
        return None

    def release(self) -> None:
        super().release()
        self.conn.hub._producers.discard(self)


# ---------------------------------------------------------------------------------------- consumers


class ConsumerLink(Link):
    @classmethod
    def create(cls, session: Session, name: str, handle: int, segments: list[str], fields: list) -> ConsumerLink:
        devhub = session.conn.hub
        if len(segments) != 5 or segments[1].lower() != "consumergroups" or segments[3].lower() != "partitions":
            raise Refused(
                "amqp:not-found",
                "DevHub: a receiver link's source must be "
                "'<hub>/ConsumerGroups/<group>/Partitions/<id>', got "
                f"'/{'/'.join(segments)}'",
            )
        hub = devhub.find_hub(segments[0])
        if hub is None:
            raise Refused("amqp:not-found", devhub.hub_not_found(segments[0]))
        group = hub.consumer_groups.get(segments[2].lower())
        if group is None:
            raise Refused("amqp:not-found", hub.group_not_found(segments[2]))
        plog = hub.partitions.get(segments[4])
        if plog is None:
            raise Refused("amqp:not-found", f"DevHub: partition '{segments[4]}' does not exist in '{hub.name}'.")
        link = cls(session, name, handle)
        link.hub_name = hub.name
        link.partition = plog.partition
        link.group = group
        link.log = plog
        link.next_seq = start_position(plog, F.field(fields, 5))
        props = F.field(fields, 13, {}) or {}
        epoch = props.get(EPOCH)
        link.epoch = int(epoch) if epoch is not None else None
        desired = F.field(fields, 12, []) or []
        link.track_last_enqueued = RUNTIME_METRIC in desired
        devhub.claim(link)  # may raise Refused, or steal the partition from other readers
        return link

    def __init__(self, session: Session, name: str, handle: int) -> None:
        super().__init__(session, name, handle)
        self.group = ""
        self.log: PartitionLog
        self.next_seq = 0
        self.epoch: int | None = None
        self.track_last_enqueued = False
        self.delivery_count = 0
        self.credit = 0
        self._slow_timer: asyncio.TimerHandle | None = None

    def attached(self, fields: list) -> None:
        offered = [RUNTIME_METRIC] if self.track_last_enqueued else None
        props = {F.Symbol(EPOCH): self.epoch} if self.epoch is not None else None
        self.conn.write(
            F.attach_frame(
                self.session.channel,
                self.name,
                self.handle,
                F.ROLE_SENDER,
                self.source,
                self.target,
                snd_settle_mode=1,
                initial_delivery_count=0,
                offered_capabilities=offered,
                properties=props,
            )
        )
        self.log.readers.add(self)

    def on_flow(self, fields: list) -> None:
        delivery_count = F.field(fields, 5)
        credit = F.field(fields, 6, 0)
        self.credit = credit if delivery_count is None else delivery_count + credit - self.delivery_count
        self.pump()
        if F.field(fields, 8, False) and self.credit > 0 and not self.detach_sent:
            # Drain: use up the credit we cannot serve, and say so.
            self.delivery_count += self.credit
            self.credit = 0
            self.log.waiters.discard(self)
            self.conn.write(self.session.flow(self, delivery_count=self.delivery_count, credit=0, drain=True))
        elif F.field(fields, 9, False):
            self.conn.write(self.session.flow(self, delivery_count=self.delivery_count, credit=self.credit))

    def pump(self) -> None:
        """Send what the log has, bounded by link credit and the session window; park otherwise."""
        if self.detach_sent or self.credit <= 0:
            return
        plog = self.log
        if plog.paused:
            plog.waiters.add(self)
            return
        if self._slow_timer is not None:
            return
        if self.next_seq < plog.begin_seq:
            self.next_seq = plog.begin_seq  # retention overtook this reader
        available = plog.next_seq - self.next_seq
        if available <= 0:
            plog.waiters.add(self)
            return
        session = self.session
        window = session.remote_incoming_window
        if window <= 0:
            session.blocked.add(self)
            return
        n = min(self.credit, available, window)
        bodies, splits = plog.slice(self.next_seq, n)
        annotations = None
        if self.track_last_enqueued:
            annotations = delivery_annotations(
                plog.next_seq - 1, plog.last_offset, plog.last_time, int(time.time() * 1000)
            )
        chunks: list[bytes] = []
        channel, handle = session.channel, self.handle
        delivery_id = session.next_delivery_id
        transfer_id = session.next_transfer_id
        max_payload = self.conn.remote_max_frame_size - F.TRANSFER_OVERHEAD
        head = F.transfer_head
        for body, split in zip(bodies, splits):
            if annotations is not None:
                body = delivered(body, split, annotations)
            if len(body) <= max_payload:
                chunks.append(head(channel, handle, delivery_id, len(body)))
                chunks.append(body)
                transfer_id += 1
            else:
                parts = F.split_transfer(channel, handle, delivery_id, body, self.conn.remote_max_frame_size)
                chunks.extend(parts)
                transfer_id += len(parts)
            delivery_id = (delivery_id + 1) & 0xFFFFFFFF
        self.conn.writelines(chunks)
        session.remote_incoming_window -= transfer_id - session.next_transfer_id
        session.next_transfer_id = transfer_id
        session.next_delivery_id = delivery_id
        self.next_seq += n
        self.delivery_count += n
        self.credit -= n
        if plog.delay > 0:
            loop = self.conn.hub.loop
            self._slow_timer = loop.call_later(plog.delay, self._slow_wakeup)
        elif self.credit > 0:
            if self.next_seq >= plog.next_seq:
                plog.waiters.add(self)
            elif session.remote_incoming_window <= 0:
                session.blocked.add(self)

    def _slow_wakeup(self) -> None:
        self._slow_timer = None
        self.pump()

    def release(self) -> None:
        super().release()
        self.log.waiters.discard(self)
        self.log.readers.discard(self)
        if self._slow_timer is not None:
            self._slow_timer.cancel()
            self._slow_timer = None
        self.conn.hub.unclaim(self)


def start_position(plog: PartitionLog, src: Any) -> int:
    """First sequence number to deliver, from the source's selector filter."""
    filters = src.value[7] if isinstance(src, Described) and len(src.value) > 7 else None
    if not filters:
        return plog.begin_seq
    selector = None
    for key, value in filters.items():
        if str(key).lower() == SELECTOR_FILTER:
            selector = value.value if isinstance(value, Described) else value
    if selector is None:
        raise Refused(
            "amqp:not-implemented",
            f"DevHub supports only the '{SELECTOR_FILTER}' filter, got {sorted(str(k) for k in filters)}",
        )
    if isinstance(selector, bytes):
        selector = selector.decode("utf-8")
    match = _SELECTOR.match(str(selector))
    if match is None:
        raise Refused(
            "amqp:not-implemented",
            f"DevHub cannot evaluate the selector {selector!r}; it understands "
            "amqp.annotation.x-opt-offset / x-opt-sequence-number / "
            "x-opt-enqueued-time compared with > or >=",
        )
    kind, op, value = match.group(1).lower(), match.group(2), match.group(3)
    inclusive = op == ">="
    try:
        if kind == "offset":
            if value == "-1":
                return plog.begin_seq
            if value == "@latest":
                return plog.next_seq
            return plog.start_from_offset(int(value), inclusive)
        if kind == "sequence-number":
            return plog.start_from_sequence(int(value), inclusive)
        return plog.start_from_time(int(value), inclusive)
    except ValueError:
        raise Refused("amqp:invalid-field", f"DevHub: {value!r} is not a valid {kind}") from None


# ---------------------------------------------------------------------------------------- $cbs / $management


class RequestLink(Link):
    def __init__(self, session: Session, name: str, handle: int, node: str) -> None:
        super().__init__(session, name, handle)
        self.node = node
        self.delivery_count = 0
        self._parts: list[bytes] = []
        self._first: list | None = None

    def attached(self, fields: list) -> None:
        self.delivery_count = F.field(fields, 9, 0)
        self.conn.write(
            F.attach_frame(
                self.session.channel,
                self.name,
                self.handle,
                F.ROLE_RECEIVER,
                self.source,
                self.target,
                max_message_size=self.conn.hub.max_message_size,
            )
        )
        self.conn.write(self.session.flow(self, delivery_count=self.delivery_count, credit=PRODUCER_CREDIT))

    def on_transfer(self, fields: list, payload) -> None:
        if self._first is None:
            self._first = fields
        self._parts.append(bytes(payload))
        if F.field(fields, 5, False):
            return
        first, body = self._first, b"".join(self._parts)
        self._first, self._parts = None, []
        self.delivery_count += 1
        if self.delivery_count % (PRODUCER_CREDIT // 2) == 0:
            self.conn.write(self.session.flow(self, delivery_count=self.delivery_count, credit=PRODUCER_CREDIT))
        if not F.field(first, 4, False):
            self.session.accept(first[1])
        answer = nodes.handle(self.conn.hub, self.node, body)
        for link in self.session.links.values():
            if isinstance(link, ReplyLink) and link.node == self.node and not link.detach_sent:
                link.send(answer)
                return


class ReplyLink(Link):
    def __init__(self, session: Session, name: str, handle: int, node: str) -> None:
        super().__init__(session, name, handle)
        self.node = node
        self.queue: deque[bytes] = deque()
        self.delivery_count = 0
        self.credit = 0
        self.settled = True

    def attached(self, fields: list) -> None:
        requested = F.field(fields, 3, 2)
        self.settled = requested != 0
        self.conn.write(
            F.attach_frame(
                self.session.channel,
                self.name,
                self.handle,
                F.ROLE_SENDER,
                self.source,
                self.target,
                snd_settle_mode=requested,
                initial_delivery_count=0,
            )
        )

    def on_flow(self, fields: list) -> None:
        delivery_count = F.field(fields, 5)
        credit = F.field(fields, 6, 0)
        self.credit = credit if delivery_count is None else delivery_count + credit - self.delivery_count
        self.pump()

    def send(self, payload: bytes) -> None:
        self.queue.append(payload)
        self.pump()

    def pump(self) -> None:
        session = self.session
        while self.queue and self.credit > 0 and not self.detach_sent:
            if session.remote_incoming_window <= 0:
                session.blocked.add(self)
                return
            payload = self.queue.popleft()
            did = session.next_delivery_id
            tag = did.to_bytes(4, "big")
            perf = described_list(
                F.TRANSFER,
                [UInt(self.handle), UInt(did), tag, UInt(0), self.settled, False, None, None, False, False, False],
            )
            self.conn.write(F.frame(session.channel, perf + payload))
            session.next_delivery_id = (did + 1) & 0xFFFFFFFF
            session.next_transfer_id += 1
            session.remote_incoming_window -= 1
            self.delivery_count += 1
            self.credit -= 1
