"""Projection stores behind one interface (`ProjectionStore`), chosen by URL."""

from processor.stores.base import ProjectionStore, StoreError, open_store

__all__ = ["ProjectionStore", "StoreError", "open_store"]
