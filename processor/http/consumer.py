"""What the HTTP layer can tell about the worker's SDK consumer, from what the worker itself reports."""

from __future__ import annotations

from typing import Any


def consumer_alive(worker: Any) -> bool | None:
    """True while the worker's consumer task runs; None when there is no worker to ask."""
    return getattr(worker, "consumer_alive", None)
