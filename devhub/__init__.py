"""DevHub: a local Azure Event Hubs endpoint speaking AMQP 1.0 to the real azure-eventhub SDK, for tests, benchmarks
and the demo; never part of production (the `processor` package does not import it).

    async with DevHub([HubSpec("events", partitions=4)]) as hub:
        conn_str = hub.connection_string("events")

server (the endpoint), connection/frames/codec/message (AMQP), links (send and receive), log (partition logs),
nodes ($cbs, $management), partition_key (where a keyed event goes), faults/admin (fault injection), command (the
`devhub` command line) and demo (`devhub demo`). The endpoint imports only the standard library; the command
line and the demo also import `processor`, as a tool built on top of it.
"""

from .server import DEFAULT_PORT, DevHub, HubSpec

__all__ = ["DEFAULT_PORT", "DevHub", "HubSpec"]
