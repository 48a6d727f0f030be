"""Event Hubs clients built from the settings: a connection string, or a namespace with Azure AD credentials."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlparse, urlsplit

from azure.eventhub import TransportType
from azure.eventhub.aio import CheckpointStore, EventHubConsumerClient, EventHubProducerClient
from azure.eventhub.exceptions import EventHubError

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
        "`./dev run` (the demo, `devhub demo`) runs everything locally without either"
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
    kwargs: dict[str, Any] = {
        "eventhub_name": hub_name(settings),
        "retry_mode": settings.eventhub_retry_mode,
        "retry_total": settings.eventhub_retry_total,
        "retry_backoff_factor": settings.eventhub_retry_backoff_factor,
        "retry_backoff_max": settings.eventhub_retry_backoff_max,
        # Passed even when it is plain AMQP: with a custom endpoint the SDK would otherwise pick WebSockets.
        "transport_type": TransportType.AmqpOverWebsocket
        if settings.eventhub_transport == "websockets"
        else TransportType.Amqp,
    }
    if settings.eventhub_proxy:
        kwargs["http_proxy"] = http_proxy(settings.eventhub_proxy)  # the SDK then uses WebSockets
    if settings.eventhub_custom_endpoint:
        kwargs["custom_endpoint_address"] = settings.eventhub_custom_endpoint
    return kwargs


def http_proxy(url: str) -> dict[str, Any]:
    """The async SDK's proxy dictionary from http://[USER:PASSWORD@]HOST:PORT (checked by the settings)."""
    parts = urlsplit(url if "//" in url else "http://" + url)
    # With a scheme: the async client hands "HOST:PORT" to aiohttp as the proxy URL, which then refuses it
    # (azure-sdk-for-python issue 40274; the sync client wants the bare host). Found by tests/worker/test_sdk_settings.
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
    proxy: dict[str, Any] = {"proxy_hostname": f"http://{host}", "proxy_port": parts.port}
    if parts.username:
        proxy["username"] = unquote(parts.username)
        proxy["password"] = unquote(parts.password or "")
    return proxy


def consumer_client(
    settings: Settings, checkpoint_store: CheckpointStore | None = None, consumer_group: str | None = None
) -> EventHubConsumerClient:
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

    return EventHubConsumerClient(
        fully_qualified_namespace=namespace(settings), credential=DefaultAzureCredential(), **kwargs
    )


def producer_client(settings: Settings) -> EventHubProducerClient:
    kwargs = _common(settings)
    if settings.eventhub_connection_string:
        return EventHubProducerClient.from_connection_string(settings.eventhub_connection_string, **kwargs)
    from azure.identity.aio import DefaultAzureCredential

    return EventHubProducerClient(
        fully_qualified_namespace=namespace(settings), credential=DefaultAzureCredential(), **kwargs
    )


# --- what an Event Hubs error means to whoever runs the command --------------------------------------------


def not_found(exc: BaseException) -> bool:
    """The service's 404 (`amqp:not-found`): the hub, or its consumer group, does not exist. The SDK retries it
    as it retries everything; retrying cannot create it."""
    return isinstance(exc, EventHubError) and exc.error == "not-found"


def _local(settings: Settings) -> bool:
    conn = settings.eventhub_connection_string
    return conn is not None and _conn_parts(conn).get("usedevelopmentemulator", "").lower() == "true"


def _namespace_name(settings: Settings) -> str:
    host = namespace(settings).partition(":")[0]
    return host.split(".")[0] if host.endswith(".servicebus.windows.net") else "NS"


def missing_hub(settings: Settings) -> str:
    """One line: the hub does not exist, what names it, how to create it."""
    hub = hub_name(settings)
    how = (
        f"devhub serve --hub {hub}"
        if _local(settings)
        else "az eventhubs eventhub create --resource-group RG "
        f"--namespace-name {_namespace_name(settings)} --name {hub}"
    )
    return (
        f"the event hub {hub!r} does not exist in {namespace(settings)}: check PROCESSOR_EVENTHUB_NAME (or the "
        f"connection string's EntityPath), or create it: `{how}`"
    )


def missing_consumer_group(settings: Settings, group: str) -> str:
    """One line: the consumer group does not exist on the hub, and how to create it."""
    hub = hub_name(settings)
    how = (
        f"az eventhubs eventhub consumer-group create --resource-group RG --namespace-name "
        f"{_namespace_name(settings)} --eventhub-name {hub} --name {group}"
    )
    local = f" (the local hub: `devhub serve --consumer-group {group}`)" if _local(settings) else ""
    return (
        f"the consumer group {group!r} does not exist on event hub {hub!r} in {namespace(settings)}: "
        f"create it with `{how}`{local}"
    )


def unreachable(settings: Settings, exc: BaseException) -> str:
    """One line for any other failure to talk to the hub: the SDK's messages run over several lines."""
    text = (getattr(exc, "message", None) or str(exc)).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return f"cannot reach the event hub {hub_name(settings)!r} at {namespace(settings)}: {first}"


def hub_problem(settings: Settings, exc: BaseException) -> str:
    """What a failed management request (partition ids, properties) means: these name no consumer group, so a
    not-found is the hub's."""
    return missing_hub(settings) if not_found(exc) else unreachable(settings, exc)
