import pytest

from processor.config import Settings
from processor.ingest import ingest
from processor.stores.sqlite import SqliteStore
from tests.http.helpers import sample_lines


@pytest.fixture
async def filled_store(tmp_path):
    """A real SQLite projection filled through file ingest with realistic traffic and a few poison lines."""
    store = SqliteStore(f"sqlite:///{tmp_path}/projection.sqlite")
    await store.open()
    tally = await ingest(sample_lines(), Settings(), store)
    assert tally.count("applied") > 100 and tally.count("dead_lettered") >= 3
    yield store
    await store.close()


@pytest.fixture
async def all_rows(filled_store):
    """The oracle: every row, straight from the store."""
    return [row async for row in filled_store.export()]
