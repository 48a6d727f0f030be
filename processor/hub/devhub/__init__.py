"""DevHub: a local Azure Event Hubs endpoint speaking AMQP 1.0 to the real azure-eventhub SDK.

    async with DevHub([HubSpec("events", partitions=4)]) as hub:
        conn_str = hub.connection_string("events")
"""

from .server import DEFAULT_PORT, DevHub, HubSpec

__all__ = ["DEFAULT_PORT", "DevHub", "HubSpec"]
