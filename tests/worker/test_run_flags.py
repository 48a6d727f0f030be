"""`processor run --consumer-group G --from POSITION`: the flags reach the worker, over the settings."""

from __future__ import annotations

from tests.worker.helpers import clean_env, worker_settings
from tests.worker.processes import finish, spawn


def env_for(settings, **extra: str) -> dict:
    return {
        **clean_env(),
        "PROCESSOR_EVENTHUB_CONNECTION_STRING": settings.eventhub_connection_string,
        "PROCESSOR_STORE_URL": settings.store_url,
        "PROCESSOR_CHECKPOINT_URL": settings.checkpoint_url,
        "PROCESSOR_LOAD_BALANCING_INTERVAL": "0.5",
        "PROCESSOR_ALLOWED_SOURCES": "",
        **extra,
    }


async def test_run_consumes_the_consumer_group_its_flag_names(devhub, tmp_path):
    # The local hub has $Default and replay; the variable names one that exists, the flag one that does not.
    env = env_for(worker_settings(devhub, tmp_path), PROCESSOR_CONSUMER_GROUP="replay", PROCESSOR_NOT_FOUND_TIMEOUT="1")
    code, _, err = await finish(
        await spawn("run", "--no-http", "--consumer-group", "nobody", env=env, cwd=tmp_path), 60
    )
    assert code == 1, err
    assert "consumer group 'nobody' does not exist" in err.strip().splitlines()[-1], err


async def test_a_bad_starting_position_flag_is_named_as_typed(devhub, tmp_path):
    env = env_for(worker_settings(devhub, tmp_path))
    code, _, err = await finish(await spawn("run", "--no-http", "--from", "yesterday", env=env, cwd=tmp_path), 60)
    assert code == 2 and err.startswith("processor: bad setting: --from: expected earliest, latest"), err
