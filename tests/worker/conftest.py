import pytest

from processor.hub.devhub import DevHub, HubSpec
from tests.support.azurite import AzuriteUnavailable, run_azurite


@pytest.fixture
async def devhub():
    async with DevHub([HubSpec(name="events", partitions=4, consumer_groups=("$Default", "replay"))]) as hub:
        yield hub


@pytest.fixture
async def azurite(tmp_path):
    try:
        async with run_azurite(tmp_path / "azurite") as instance:
            await instance.create_container("checkpoints")
            yield instance
    except AzuriteUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
