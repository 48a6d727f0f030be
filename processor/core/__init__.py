"""The pure core: intake of a message body, the merge building blocks and the reducers made of them, the fold
(outcomes and one write per object), the reorder buffer, the bounded row cache of streaming ingest, and a
partition's checkpoint progress.

Nothing in here does I/O or touches asyncio; the adapters (file ingest, Event Hubs worker, stores) drive it.
Imports only `processor.events`.
"""
