import pytest

from devhub import DevHub, HubSpec


@pytest.fixture
async def devhub():
    async with DevHub([HubSpec(name="events", partitions=4, consumer_groups=("$default", "audit"))]) as hub:
        yield hub
