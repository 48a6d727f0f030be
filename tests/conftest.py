import pytest

from processor.config import Settings
from processor.stores.sqlite import SqliteStore


@pytest.fixture
def settings() -> Settings:
    return Settings()


@pytest.fixture
async def sqlite_store(tmp_path):
    store = SqliteStore(f"sqlite:///{tmp_path}/projection.sqlite")
    await store.open()
    yield store
    await store.close()
