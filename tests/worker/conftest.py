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
    import secrets

    from tests.stores.conftest import (
        _CONNECT_ERRORS,
        HOW_TO_START,
        admin_url,
        create_database,
        drop_database,
        run_aside,
        with_database,
    )

    name = f"processor_worker_{secrets.token_hex(4)}"
    try:
        run_aside(lambda: create_database(name))
    except _CONNECT_ERRORS as exc:
        pytest.fail(f"PostgreSQL at {admin_url()} is unreachable: {exc}\n{HOW_TO_START}", pytrace=False)
    yield with_database(admin_url(), name)
    run_aside(lambda: drop_database(name))
