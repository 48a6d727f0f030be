"""Azure Event Grid -> Event Hubs stream processor: a per-object latest-state projection.

Layers, imported only downward (tests/test_layers.py keeps it so): `events`, `core` (pure: decode, catalog,
merge reducers, fold) <- `config`, `stores`, `hub`, `projector` (adapters) <- `worker`, `ingest`, `admission`
<- `http` <- `cli`. `runtime` (signals, logging) imports nothing of the package.
"""

__version__ = "0.1.0"
