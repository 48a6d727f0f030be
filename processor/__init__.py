"""Azure Event Grid -> Event Hubs stream processor: a per-object latest-state projection."""

__version__ = "0.1.0"
