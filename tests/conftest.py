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


@pytest.fixture
async def azurite(tmp_path):
    """Azurite's blob service on a free port, in a folder of the test's (fails, never skips, without Node)."""
    from tests.support.azurite import AzuriteUnavailable, run_azurite

    try:
        async with run_azurite(tmp_path / "azurite") as instance:
            yield instance
    except AzuriteUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
