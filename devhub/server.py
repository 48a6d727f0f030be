"""DevHub: a local Event Hubs endpoint for the real azure-eventhub SDK (AMQP 1.0, plain TCP)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from . import admin
from .connection import Connection
from .faults import Faults
from .links import ConsumerLink, Link, Refused
from .log import Hub, PartitionLog
from .partition_key import partition_for_key

log = logging.getLogger("devhub")

DEFAULT_PORT = 5673  # 5672 is often held by another broker (RabbitMQ)
KEY_NAME = "devhub"
KEY = "ZGV2aHViLWxvY2FsLWtleQ=="  # any key works: the hub does not check signatures


@dataclass(frozen=True)
class HubSpec:
    name: str
    partitions: int = 4
    consumer_groups: tuple[str, ...] = ("$default",)
    retention_events: int | None = None
    retention_seconds: float | None = None


class DevHub:
    def __init__(
        self,
        hubs: Iterable[HubSpec],
        host: str = "127.0.0.1",
        port: int = 0,
        data_dir: str | Path | None = None,
        max_message_size: int = 1024 * 1024,
        admin_port: int | None = None,
    ) -> None:
        self.specs = list(hubs)
        if not self.specs:
            raise ValueError("DevHub needs at least one HubSpec")
        names = [s.name.lower() for s in self.specs]
        if len(set(names)) != len(names):
            raise ValueError("hub names must be unique (case-insensitively)")
        for spec in self.specs:
            if spec.partitions < 1:
                raise ValueError(f"hub {spec.name!r}: partitions must be >= 1")
        self.host = host
        self.port = port
        self.admin_port = admin_port
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.max_message_size = max_message_size
        # Frames up to 1 MiB plus room for the transfer performative; larger messages arrive split.
        self.max_frame_size = 1024 * 1024 + 4096
        self.container_id = "devhub"
        self.faults = Faults(self)
        self.hubs: dict[str, Hub] = {}
        self.loop: asyncio.AbstractEventLoop
        self._server: asyncio.base_events.Server | None = None
        self._admin_server: asyncio.base_events.Server | None = None
        self._connections: set[Connection] = set()
        self._producers: set[Link] = set()
        self._owners: dict[tuple[str, str, str], set[ConsumerLink]] = {}
        self._retention_timer: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> DevHub:
        self.loop = asyncio.get_running_loop()
        for spec in self.specs:
            self.hubs[spec.name.lower()] = Hub(
                spec.name,
                spec.partitions,
                spec.consumer_groups,
                retention_events=spec.retention_events,
                retention_seconds=spec.retention_seconds,
                data_dir=self.data_dir,
            )
        try:
            # reuse_address: a restarted hub must get the same port back while old sockets sit in TIME_WAIT.
            self._server = await self.loop.create_server(
                lambda: Connection(self), self.host, self.port, reuse_address=True
            )
            self.port = self._server.sockets[0].getsockname()[1]
            if self.admin_port is not None:
                self._admin_server = await admin.serve(self, self.host, self.admin_port)
                self.admin_port = self._admin_server.sockets[0].getsockname()[1]
        except BaseException:
            await self.stop()
            raise
        if any(spec.retention_seconds for spec in self.specs):
            self._schedule_retention()
        log.info("devhub listening on %s:%s", self.host, self.port)
        return self

    async def stop(self) -> None:
        if self._retention_timer is not None:
            self._retention_timer.cancel()
            self._retention_timer = None
        for server in (self._server, self._admin_server):
            if server is not None:
                server.close()
        for conn in list(self._connections):
            conn.abort()
        for server in (self._server, self._admin_server):
            if server is not None:
                await server.wait_closed()
        self._server = self._admin_server = None
        for hub in self.hubs.values():
            hub.close()
        self._owners.clear()
        self._producers.clear()

    async def __aenter__(self) -> DevHub:
        return await self.start()

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    def _schedule_retention(self) -> None:
        shortest = min(s.retention_seconds for s in self.specs if s.retention_seconds)
        self._retention_timer = self.loop.call_later(min(1.0, max(0.05, shortest / 4)), self._retention_tick)

    def _retention_tick(self) -> None:
        for hub in self.hubs.values():
            for plog in hub.partitions.values():
                plog.trim()
        self._schedule_retention()

    # ------------------------------------------------------------------ public helpers

    def connection_string(self, hub: str) -> str:
        spec_hub = self.find_hub(hub)
        if spec_hub is None:
            raise KeyError(f"no hub named {hub!r}")
        host = "127.0.0.1" if self.host in ("", "0.0.0.0", "::") else self.host
        return (
            f"Endpoint=sb://{host}:{self.port};SharedAccessKeyName={KEY_NAME};SharedAccessKey={KEY};"
            f"EntityPath={spec_hub.name};UseDevelopmentEmulator=true"
        )

    def partition_info(self, hub: str, partition: str) -> dict:
        return self.log_of(hub, partition).properties()

    # ------------------------------------------------------------------ used by links

    def find_hub(self, name: str) -> Hub | None:
        return self.hubs.get(name.lower())

    def hub_not_found(self, name: str) -> str:
        """The service's words for a missing hub, and how to serve it here."""
        served = [spec.name for spec in self.specs]
        flags = " ".join(f"--hub {hub}" for hub in served + [name])
        return (
            f"The messaging entity '{name}' could not be found. DevHub serves {', '.join(served)}; "
            f"serve it too with `devhub serve {flags}`."
        )

    def log_of(self, hub: str, partition: str) -> PartitionLog:
        found = self.find_hub(hub)
        if found is None:
            raise KeyError(f"no hub named {hub!r}")
        plog = found.partitions.get(str(partition))
        if plog is None:
            raise KeyError(f"hub {hub!r} has no partition {partition!r}")
        return plog

    def partition_for_key(self, hub: Hub, key: str) -> str:
        # The Python SDK's hashing (see partition_key), so a key lands where its buffered producer puts it.
        return partition_for_key(key, hub.partition_ids)

    def claim(self, link: ConsumerLink) -> None:
        """Owner-level (epoch) arbitration for one partition of one consumer group."""
        key = (link.hub_name or "", link.group.lower(), link.partition or "")
        readers = self._owners.setdefault(key, set())
        epochs = [r.epoch for r in readers if r.epoch is not None]
        if link.epoch is None:
            if epochs:
                raise Refused(
                    "amqp:link:stolen",
                    f"At least one receiver for the endpoint is created with epoch of '{max(epochs)}', "
                    "and so non-epoch receiver is not allowed. (DevHub)",
                )
        else:
            if epochs and max(epochs) > link.epoch:
                raise Refused(
                    "amqp:link:stolen",
                    f"Receiver with a higher epoch of '{max(epochs)}' already exists. Receiver with "
                    f"epoch '{link.epoch}' cannot be created. (DevHub)",
                )
            for reader in list(readers):
                reader.detach(
                    "amqp:link:stolen",
                    f"New receiver with higher epoch of '{link.epoch}' is created hence current receiver "
                    f"with epoch '{reader.epoch}' is getting disconnected. (DevHub)",
                )
        readers.add(link)

    def unclaim(self, link: ConsumerLink) -> None:
        key = (link.hub_name or "", link.group.lower(), link.partition or "")
        readers = self._owners.get(key)
        if readers is not None:
            readers.discard(link)

    def _links(self) -> list[Link]:
        consumers = [r for readers in self._owners.values() for r in readers]
        return consumers + list(self._producers)
