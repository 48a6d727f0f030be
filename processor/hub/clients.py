"""Event Hubs clients built from the settings: a connection string, or a namespace with Azure AD credentials."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlparse

from azure.eventhub.aio import CheckpointStore, EventHubConsumerClient, EventHubProducerClient

from processor.config import ConfigError, Settings
from processor.events.timefmt import normalize_time


def _conn_parts(conn: str) -> dict[str, str]:
    parts = {}
    for item in conn.split(";"):
        key, sep, value = item.partition("=")
        if sep:
            parts[key.strip().lower()] = value.strip()
    return parts


def hub_name(settings: Settings) -> str:
    """The hub: the connection string's EntityPath when it has one, else PROCESSOR_EVENTHUB_NAME."""
    if settings.eventhub_connection_string:
        entity = _conn_parts(settings.eventhub_connection_string).get("entitypath")
        if entity:
            return entity
    return settings.eventhub_name


def namespace(settings: Settings) -> str:
    """The namespace exactly as the SDK writes it into checkpoint and ownership records (host[:port])."""
    if settings.eventhub_connection_string:
        endpoint = _conn_parts(settings.eventhub_connection_string).get("endpoint", "")
        host = urlparse(endpoint.rstrip("/")).netloc
        if not host:
            raise ConfigError("PROCESSOR_EVENTHUB_CONNECTION_STRING: no Endpoint=sb://HOST in it")
        return host
    if settings.eventhub_namespace:
        return settings.eventhub_namespace
    raise ConfigError(
        "PROCESSOR_EVENTHUB_CONNECTION_STRING: not set (nor PROCESSOR_EVENTHUB_NAMESPACE); "
        "`processor demo` runs everything locally without either"
    )


def starting_position(settings: Settings) -> str | datetime:
    position = settings.starting_position
    if position == "earliest":
        return "-1"
    if position == "latest":
        return "@latest"
    canonical = normalize_time(position)
    return datetime.fromisoformat(canonical[:26] + "+00:00")


def _common(settings: Settings) -> dict[str, Any]:
    namespace(settings)  # fails early, naming the setting, when neither way to connect is given
    return {"eventhub_name": hub_name(settings)}


def consumer_client(settings: Settings, checkpoint_store: CheckpointStore | None = None,
                    consumer_group: str | None = None) -> EventHubConsumerClient:
    kwargs: dict[str, Any] = {
        **_common(settings),
        "consumer_group": consumer_group or settings.consumer_group,
        "load_balancing_interval": settings.load_balancing_interval,
        "partition_ownership_expiration_interval": settings.ownership_expiration,
    }
    if checkpoint_store is not None:
        kwargs["checkpoint_store"] = checkpoint_store
    if settings.eventhub_connection_string:
        return EventHubConsumerClient.from_connection_string(settings.eventhub_connection_string, **kwargs)
    from azure.identity.aio import DefaultAzureCredential

    return EventHubConsumerClient(fully_qualified_namespace=settings.eventhub_namespace,
                                  credential=DefaultAzureCredential(), **kwargs)


def producer_client(settings: Settings) -> EventHubProducerClient:
    kwargs = _common(settings)
    if settings.eventhub_connection_string:
        return EventHubProducerClient.from_connection_string(settings.eventhub_connection_string, **kwargs)
    from azure.identity.aio import DefaultAzureCredential

    return EventHubProducerClient(fully_qualified_namespace=settings.eventhub_namespace,
                                  credential=DefaultAzureCredential(), **kwargs)
