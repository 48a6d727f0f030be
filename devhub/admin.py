"""Admin channel: fault injection for a DevHub running in another process.

One JSON object per line over loopback TCP, one JSON reply per line. Requests name a Faults
method and its keyword arguments, e.g. {"op": "pause_partition", "hub": "events", "partition": "1"};
`status` returns every partition's properties.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import DevHub

OPS = ("drop_connections", "detach_links", "pause_partition", "resume_partition", "slow_partition", "status")


async def serve(devhub: DevHub, host: str, port: int) -> asyncio.base_events.Server:
    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while line := await reader.readline():
                writer.write(json.dumps(run(devhub, line)).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    # The admin channel has no authentication: loopback only, whatever host the hub itself uses.
    return await asyncio.start_server(on_client, "127.0.0.1", port, reuse_address=True)


def run(devhub: DevHub, line: bytes) -> dict[str, Any]:
    try:
        request = json.loads(line)
        op = request.pop("op")
        if op not in OPS:
            return {"ok": False, "error": f"unknown op {op!r}; known: {', '.join(OPS)}"}
        if op == "status":
            return {"ok": True, "result": status(devhub)}
        return {"ok": True, "result": getattr(devhub.faults, op)(**request)}
    except (KeyError, TypeError, ValueError) as exc:
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


def status(devhub: DevHub) -> dict[str, Any]:
    out: dict[str, Any] = {"port": devhub.port, "connections": len(devhub._connections), "hubs": {}}
    for hub in devhub.hubs.values():
        parts = {}
        for pid, plog in hub.partitions.items():
            info = plog.properties()
            info["last_enqueued_time_utc"] = info["last_enqueued_time_utc"].isoformat()
            info["paused"] = plog.paused
            info["delay_seconds"] = plog.delay
            info["readers"] = len(plog.readers)
            parts[pid] = info
        out["hubs"][hub.name] = parts
    return out


async def call(host: str, port: int, op: str, **args: Any) -> dict[str, Any]:
    """Send one admin request and return the decoded reply."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(json.dumps({"op": op, **args}).encode() + b"\n")
        await writer.drain()
        line = await reader.readline()
        if not line:
            raise ConnectionError("devhub admin channel closed without a reply")
        return json.loads(line)
    finally:
        writer.close()
