"""The long-lived Event Hubs worker (its commands, run and replay, are in `processor.cli.worker`).

`app.run_worker` wires the parts, each in a module of its own: `feed` (the feeder process, whose frames drive
the worker), `worker` (the flow: intake, reorder buffer, projector, partition progress), `checkpointer`,
`watches` (stalled partitions, a missing hub or consumer group, over the pure `missing`), `retry` (backoff,
failure streaks), `metrics` (histograms), `partitions` (per-partition state). They import the core, the
stores, the hub adapters (the feeder's wire format among them), the projector and `processor.admission`.
"""
