"""The `$cbs` and `$management` nodes: request in, reply out.

CBS accepts every token: the hub listens on loopback only and exists for development, so it
answers put-token with 202 whatever the signature. `$management` implements READ for the hub and
partition properties, which the SDK calls before sending and for get_*_properties.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .codec import Timestamp
from .message import parse_request, reply

if TYPE_CHECKING:
    from .server import DevHub


def handle(devhub: DevHub, node: str, body: bytes) -> bytes:
    try:
        request = parse_request(body)
    except Exception as exc:  # noqa: BLE001 - any undecodable request gets a 400 reply, not a hang
        return reply(None, 400, f"DevHub could not decode the request: {exc}")
    props = request.application_properties
    if node == "$cbs":
        return _cbs(request.message_id, props)
    return _management(devhub, request.message_id, props)


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _cbs(message_id: Any, props: dict) -> bytes:
    operation = _text(props.get("operation", ""))
    if operation != "put-token":
        return reply(message_id, 400, f"DevHub: unsupported $cbs operation '{operation}'")
    return reply(message_id, 202, "Accepted")


def _management(devhub: DevHub, message_id: Any, props: dict) -> bytes:
    operation = _text(props.get("operation", ""))
    kind = _text(props.get("type", ""))
    if operation != "READ":
        return reply(message_id, 400, f"DevHub: unsupported $management operation '{operation}'")
    name = _text(props.get("name", ""))
    hub = devhub.find_hub(name)
    if hub is None:
        return reply(message_id, 404, devhub.hub_not_found(name))
    if kind == "com.microsoft:eventhub":
        return reply(
            message_id,
            200,
            "OK",
            {
                "name": hub.name,
                "created_at": Timestamp(hub.created_at),
                "partition_ids": list(hub.partition_ids),
            },
        )
    if kind == "com.microsoft:partition":
        pid = _text(props.get("partition", ""))
        plog = hub.partitions.get(pid)
        if plog is None:
            return reply(message_id, 404, f"DevHub: partition '{pid}' does not exist in '{hub.name}'.")
        info = plog.properties()
        return reply(
            message_id,
            200,
            "OK",
            {
                "name": hub.name,
                "partition": pid,
                "begin_sequence_number": info["beginning_sequence_number"],
                "last_enqueued_sequence_number": info["last_enqueued_sequence_number"],
                "last_enqueued_offset": info["last_enqueued_offset"],
                "is_partition_empty": info["is_empty"],
                "last_enqueued_time_utc": Timestamp(plog.last_time),
            },
        )
    return reply(message_id, 400, f"DevHub: unsupported $management type '{kind}'")
