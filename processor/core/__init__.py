"""The pure core: admission of messages, per-object ordering, staleness rules, reducers and the batch fold.

Nothing in here does I/O or touches asyncio; the adapters (file ingest, Event Hubs worker, stores) drive it.
"""
