"""What the HTTP layer can tell about the worker's SDK consumer.

The worker does not (yet) say whether its consumer is alive or which owner id it claims partitions under, so
this reads the azure-eventhub client's event processors, which are private. Everything here degrades to
"unknown" (None) when the SDK changes shape, and nothing else in the HTTP layer touches SDK internals.
"""

from __future__ import annotations

from typing import Any


def _processors(worker: Any) -> list[Any] | None:
    client = getattr(worker, "client", None)
    if client is None:
        return None
    processors = getattr(client, "_event_processors", None)
    if not isinstance(processors, dict):
        return None
    return list(processors.values())


def consumer_alive(worker: Any) -> bool | None:
    """True while an event processor of the worker's client runs; None when that cannot be told."""
    processors = _processors(worker)
    if processors is None:
        return None
    return any(getattr(p, "_running", False) for p in processors)


def owner_ids(worker: Any) -> set[str]:
    """The owner ids this worker claims partitions under (empty when unknown)."""
    return {str(p._id) for p in _processors(worker) or [] if getattr(p, "_id", None)}
