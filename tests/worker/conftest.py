import pytest

from devhub import DevHub, HubSpec


@pytest.fixture
async def devhub():
    async with DevHub([HubSpec(name="events", partitions=4, consumer_groups=("$Default", "replay"))]) as hub:
        yield hub


@pytest.fixture
async def azurite(azurite):
    """The shared Azurite, with the container the worker tests keep their checkpoints in."""
    await azurite.create_container("checkpoints")
    yield azurite


@pytest.fixture
def postgres_store_url():
    """A fresh PostgreSQL database for one test's projection (fails, never skips, without a server)."""
    from tests.stores.conftest import fresh_database

    with fresh_database("processor_worker") as url:
        yield url
