"""Projection stores: one row per (source, object) plus the dead letters, behind one contract.

`base` is the contract (`ProjectionStore`, `Query`, `StoreError`, the data shapes) and imports no store;
`sqlite` and `postgres` implement it (the same tests in tests/stores run against both); `registry.open_store`
chooses one by URL; `urls` holds the URL forms (pure: `processor.config` checks settings with it);
`sqlite_thread` is what every SQLite store shares, the checkpoint store in `processor.hub` included. May import
`processor.core` and `processor.events`; nothing above them.
"""
