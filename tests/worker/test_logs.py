"""PROCESSOR_LOG_FORMAT=json: every line a real `processor run` writes to stderr (the worker's and its feeder's)
is one JSON object with time, level, logger and message, and the partition where the line is about one."""

from __future__ import annotations

import json
import signal
from datetime import datetime

from tests.worker.helpers import clean_env, worker_settings
from tests.worker.processes import finish, read_until, spawn


def run_env(settings, **extra: str) -> dict:
    return {
        **clean_env(),
        "PROCESSOR_EVENTHUB_CONNECTION_STRING": settings.eventhub_connection_string,
        "PROCESSOR_STORE_URL": settings.store_url,
        "PROCESSOR_CHECKPOINT_URL": settings.checkpoint_url,
        "PROCESSOR_LOAD_BALANCING_INTERVAL": "0.5",
        "PROCESSOR_API_TOKN": "x",  # a near miss: the settings loader warns of it, a line before the worker's
        **extra,
    }


async def test_json_logs_are_one_object_per_line_with_the_partition_where_known(devhub, tmp_path):
    env = run_env(worker_settings(devhub, tmp_path), PROCESSOR_LOG_FORMAT="json")
    proc = await spawn("run", "--no-http", env=env, cwd=tmp_path)
    early = await read_until(proc, "opened", 60)
    proc.send_signal(signal.SIGTERM)
    code, _, rest = await finish(proc, 60)
    assert code == 0, rest[-3000:]
    lines = early + rest.splitlines(keepends=True)
    records = []
    for line in lines:
        assert line.endswith("\n") and line.count("\n") == 1, line
        records.append(json.loads(line))  # fails on any line that is not one JSON object
    for r in records:
        assert {"time", "level", "logger", "message"} <= r.keys(), r
        assert r["level"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
        assert r["time"].endswith("Z") and datetime.fromisoformat(r["time"]).utcoffset().total_seconds() == 0
    near_miss = [r for r in records if "PROCESSOR_API_TOKN" in r["message"]]
    assert near_miss and near_miss[0]["level"] == "WARNING" and near_miss[0]["logger"] == "processor.config"
    opened = [r for r in records if r["message"].endswith(" opened")]
    assert opened and all(r["partition"] == r["message"].split()[1] for r in opened), opened
    assert all("partition" not in r for r in near_miss)


async def test_logs_are_text_lines_by_default(devhub, tmp_path):
    proc = await spawn("run", "--no-http", env=run_env(worker_settings(devhub, tmp_path)), cwd=tmp_path)
    early = await read_until(proc, "opened", 60)
    proc.send_signal(signal.SIGTERM)
    code, _, rest = await finish(proc, 60)
    assert code == 0, rest[-3000:]
    assert any(" WARNING processor.config: PROCESSOR_API_TOKN" in line for line in early), early
    assert not any(line.startswith("{") for line in early + rest.splitlines())
