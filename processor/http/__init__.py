"""The HTTP adapter: probes, Prometheus metrics, a read-only JSON API and the dashboard, over one store, and over
the worker when one runs in the same process, read through `view.WorkerView`. Imports the stores, the core's
types, the hub adapters (the partition status) and `processor.runtime`; never the worker, which satisfies
WorkerView by its own attributes."""
