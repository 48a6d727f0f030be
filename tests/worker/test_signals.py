"""A SIGTERM at any instant of a long-running command's life takes the graceful path and exits 0.

Kubernetes sends SIGTERM whenever it likes, a second after the pod started included; a process that dies of
it (143) instead of stopping looks like a crash. The instants below are reached by reading the command's own
stderr, never by sleeping: the first moment the process can catch a signal at all, each early line it writes,
and once it consumes.
"""

import signal

import pytest

from tests.worker.helpers import clean_env, until, worker_settings
from tests.worker.processes import DEVHUB, catches, finish, read_until, spawn

# A misspelt variable makes the settings loader say so: a line written while the command is starting.
NEAR_MISS = {"PROCESSOR_API_TOKN": "x"}


def run_env(settings) -> dict:
    return {
        **clean_env(),
        "PROCESSOR_EVENTHUB_CONNECTION_STRING": settings.eventhub_connection_string,
        "PROCESSOR_STORE_URL": settings.store_url,
        "PROCESSOR_CHECKPOINT_URL": settings.checkpoint_url,
        "PROCESSOR_LOAD_BALANCING_INTERVAL": "0.5",
        "PROCESSOR_SHUTDOWN_TIMEOUT": "10",
        **NEAR_MISS,
    }


async def signal_at(proc, instant: str) -> None:
    if instant == "as soon as it can catch it":
        await until(
            lambda: catches(proc.pid) or proc.returncode is not None, 30, "the process to catch SIGTERM", every=0.001
        )
    else:
        await read_until(proc, instant, 60)
    proc.send_signal(signal.SIGTERM)


@pytest.mark.parametrize("instant", ["as soon as it can catch it", "did you mean", "no allowed sources", "opened"])
async def test_processor_run_given_sigterm_at_any_instant_exits_0(devhub, tmp_path, instant):
    proc = await spawn("run", "--no-http", env=run_env(worker_settings(devhub, tmp_path)), cwd=tmp_path)
    await signal_at(proc, instant)
    code, _, err = await finish(proc, 60)
    assert code == 0, err[-3000:]


@pytest.mark.parametrize("instant", ["as soon as it can catch it", "did you mean", "serving"])
async def test_processor_serve_given_sigterm_at_any_instant_exits_0(tmp_path, instant):
    env = {**clean_env(), "PROCESSOR_STORE_URL": f"sqlite:///{tmp_path}/projection.sqlite", **NEAR_MISS}
    proc = await spawn("serve", "--address", "127.0.0.1:0", env=env, cwd=tmp_path)
    await signal_at(proc, instant)
    code, _, err = await finish(proc, 60)
    assert code == 0, err[-3000:]


async def test_devhub_demo_given_sigterm_as_soon_as_it_can_catch_it_exits_0(tmp_path):
    proc = await spawn(
        "demo",
        "--duration",
        "0",
        "--http",
        "127.0.0.1:0",
        "--data-dir",
        str(tmp_path / "demo"),
        env=clean_env(),
        cwd=tmp_path,
        program=DEVHUB,
    )
    await signal_at(proc, "as soon as it can catch it")
    code, _, err = await finish(proc, 60)
    assert code == 0, err[-3000:]
