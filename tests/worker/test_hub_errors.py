"""A hub or consumer group that does not exist, or a hub that cannot be reached, as the commands report it.

The service answers a missing hub or consumer group with a 404 (`amqp:not-found`); the SDK retries it like
any other error, forever. Retrying cannot create it: `replay` and `status` fail within seconds with one line
saying what is missing and how to create it; `run` goes unready, says so every so often, and exits 1 after
PROCESSOR_NOT_FOUND_TIMEOUT so the orchestrator shows a failing pod rather than a quiet one.
"""

import asyncio
import logging
import signal
import socket

import pytest

from processor.hub.clients import producer_client
from processor.sim.traffic import deliver, lifecycle
from processor.worker.app import HubNotFound, WorkerOptions, run_worker
from processor.worker.simulate import publish
from tests.worker.helpers import clean_env, until, worker_settings
from tests.worker.processes import finish, read_until, spawn


def with_hub(settings, hub: str) -> str:
    return settings.eventhub_connection_string.replace("EntityPath=events", f"EntityPath={hub}")


def env_for(settings, tmp_path, **extra) -> dict:
    return {
        **clean_env(),
        "PROCESSOR_EVENTHUB_CONNECTION_STRING": settings.eventhub_connection_string,
        "PROCESSOR_CHECKPOINT_URL": settings.checkpoint_url,
        "PROCESSOR_LOAD_BALANCING_INTERVAL": "0.5",
        "PROCESSOR_ALLOWED_SOURCES": "",
        **extra,
    }


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


async def test_status_of_a_misnamed_hub_is_one_line_naming_it_and_exit_1(devhub, tmp_path):
    settings = worker_settings(devhub, tmp_path)
    env = env_for(settings, tmp_path, PROCESSOR_EVENTHUB_CONNECTION_STRING=with_hub(settings, "evnets"))
    code, _, err = await finish(await spawn("status", env=env, cwd=tmp_path), 60)
    assert code == 1
    line = one_line(err)
    assert "'evnets'" in line and "does not exist" in line and "devhub serve --hub evnets" in line


async def test_status_of_an_unreachable_hub_is_one_line_and_exit_1(tmp_path):
    conn = (
        f"Endpoint=sb://127.0.0.1:{closed_port()};SharedAccessKeyName=k;SharedAccessKey=s;EntityPath=events;"
        "UseDevelopmentEmulator=true"
    )
    env = {
        **clean_env(),
        "PROCESSOR_EVENTHUB_CONNECTION_STRING": conn,
        "PROCESSOR_CHECKPOINT_URL": f"sqlite:///{tmp_path}/c.sqlite",
    }
    code, _, err = await finish(await spawn("status", env=env, cwd=tmp_path), 120)
    assert code == 1
    line = one_line(err)
    assert "cannot reach" in line and "'events'" in line


async def test_replay_with_a_consumer_group_that_does_not_exist_fails_at_once_saying_how_to_create_it(devhub, tmp_path):
    settings = worker_settings(devhub, tmp_path)
    async with producer_client(settings) as producer:
        await publish(producer, list(deliver(lifecycle(50, seed=43), seed=44)))
    env = env_for(settings, tmp_path, PROCESSOR_STORE_URL=f"sqlite:///{tmp_path}/replayed.sqlite")
    proc = await spawn("replay", "--from", "earliest", "--consumer-group", "rebuild", env=env, cwd=tmp_path)
    code, _, err = await finish(proc, 60)
    assert code == 1, err
    line = err.strip().splitlines()[-1]
    assert "consumer group 'rebuild'" in line
    assert "az eventhubs eventhub consumer-group create" in line and "--eventhub-name events --name rebuild" in line
    assert "devhub serve --consumer-group rebuild" in line


async def test_replay_of_a_hub_that_does_not_exist_fails_at_once_naming_it(devhub, tmp_path):
    settings = worker_settings(devhub, tmp_path)
    env = env_for(
        settings,
        tmp_path,
        PROCESSOR_EVENTHUB_CONNECTION_STRING=with_hub(settings, "evnets"),
        PROCESSOR_STORE_URL=f"sqlite:///{tmp_path}/replayed.sqlite",
    )
    code, _, err = await finish(await spawn("replay", env=env, cwd=tmp_path), 60)
    assert code == 1
    assert "event hub 'evnets' does not exist" in one_line(err)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
async def test_a_replay_stopped_by_a_signal_says_so_and_does_not_exit_0(devhub, tmp_path, sig, code):
    settings = worker_settings(devhub, tmp_path)
    async with producer_client(settings) as producer:
        await publish(producer, list(deliver(lifecycle(300, seed=41), seed=42)))
    # A partition that delivers nothing: the replay cannot finish before the signal.
    devhub.faults.pause_partition("events", "0")
    env = env_for(
        settings,
        tmp_path,
        PROCESSOR_STORE_URL=f"sqlite:///{tmp_path}/replayed.sqlite",
        PROCESSOR_LOG_LEVEL="INFO",
    )
    proc = await spawn("replay", "--feeders", "2", env=env, cwd=tmp_path)
    await read_until(proc, "opened", 60)
    proc.send_signal(sig)
    got, out, err = await finish(proc, 60)
    assert got == code, err
    assert "replay stopped" in err and "not complete" in err
    assert out == ""  # no summary: nothing is done


async def test_run_with_a_misnamed_hub_goes_unready_repeats_the_error_and_exits_1_after_the_timeout(devhub, tmp_path):
    settings = worker_settings(devhub, tmp_path)
    env = env_for(
        settings,
        tmp_path,
        PROCESSOR_EVENTHUB_CONNECTION_STRING=with_hub(settings, "evnets"),
        PROCESSOR_STORE_URL=settings.store_url,
        PROCESSOR_NOT_FOUND_TIMEOUT="2",
    )
    code, _, err = await finish(await spawn("run", "--no-http", env=env, cwd=tmp_path), 60)
    assert code == 1, err
    assert "event hub 'evnets' does not exist" in err.strip().splitlines()[-1]


async def test_the_worker_is_unready_while_its_consumer_group_is_missing_and_says_so_repeatedly(
    devhub, tmp_path, caplog
):
    settings = worker_settings(devhub, tmp_path, not_found_timeout=30.0)
    workers = []
    stop = asyncio.Event()
    options = WorkerOptions(
        consumer_group="nobody", not_found_report_interval=0.5, on_started=lambda w: workers.append(w)
    )
    caplog.set_level(logging.ERROR, logger="processor.worker.app")
    running = asyncio.create_task(run_worker(settings, stop, options))
    try:
        await until(lambda: workers and workers[0].consumer_alive is False, 30, "the worker to turn unready")
        await until(
            lambda: sum("consumer group 'nobody'" in r.getMessage() for r in caplog.records) >= 2,
            30,
            "the error to be repeated",
        )
        assert not running.done()
    finally:
        stop.set()
        await running


async def test_run_gives_up_when_the_consumer_group_stays_missing(devhub, tmp_path):
    settings = worker_settings(devhub, tmp_path, not_found_timeout=1.0)
    with pytest.raises(HubNotFound, match="consumer group 'nobody'"):
        await asyncio.wait_for(run_worker(settings, asyncio.Event(), WorkerOptions(consumer_group="nobody")), 60)
