"""The HTTP adapter: probes, Prometheus metrics, a read-only JSON API and the dashboard, over one store."""
