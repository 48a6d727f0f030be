"""`python -m devhub serve` / `admin` as separate processes."""

import asyncio
import json
import signal
import sys

from tests.support.azurite import free_port

from .helpers import Collector, close_all, consumer, send


async def run(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "devhub", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    return proc.returncode, out.decode(), err.decode()


async def test_devhub_command_serves_and_admin_command_injects_faults(tmp_path):
    port, admin_port = free_port(), free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "devhub",
        "serve",
        "--port",
        str(port),
        "--admin-port",
        str(admin_port),
        "--partitions",
        "2",
        "--hub",
        "events",
        "--hub",
        "audit",
        "--consumer-group",
        "reports",
        "--data-dir",
        str(tmp_path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        first = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
        second = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
        assert first.startswith(f"Endpoint=sb://127.0.0.1:{port};") and first.endswith(
            "EntityPath=events;UseDevelopmentEmulator=true"
        )
        assert "EntityPath=audit" in second

        await send(first, ["hello"], partition_id="1")
        code, out, _ = await run("admin", "--admin-port", str(admin_port), "status")
        assert code == 0
        status = json.loads(out)
        assert status["hubs"]["events"]["1"]["last_enqueued_sequence_number"] == 0
        assert set(status["hubs"]) == {"events", "audit"}

        code, _, _ = await run("admin", "--admin-port", str(admin_port), "pause", "--hub", "events", "--partition", "1")
        assert code == 0
        code, out, _ = await run("admin", "--admin-port", str(admin_port), "status")
        assert json.loads(out)["hubs"]["events"]["1"]["paused"] is True
        code, _, _ = await run(
            "admin", "--admin-port", str(admin_port), "resume", "--hub", "events", "--partition", "1"
        )
        assert code == 0
        code, _, _ = await run(
            "admin", "--admin-port", str(admin_port), "slow", "--hub", "events", "--partition", "1", "--delay", "0"
        )
        assert code == 0
        code, _, err = await run("admin", "--admin-port", str(admin_port), "pause", "--hub", "nope", "--partition", "1")
        assert code == 1 and "no hub named 'nope'" in err

        collector = Collector(consumer(first, group="reports"), partition_id="1", starting_position="-1").start()
        try:
            await collector.wait_count(1)
            code, out, _ = await run("admin", "--admin-port", str(admin_port), "drop-connections")
            assert code == 0 and int(out) >= 1
            code, out, _ = await run(
                "admin",
                "--admin-port",
                str(admin_port),
                "detach",
                "--error",
                "com.microsoft:server-busy",
                "--hub",
                "events",
            )
            assert code == 0
        finally:
            await collector.close()
        assert collector.bodies() == ["hello"]
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0


async def test_admin_command_without_a_running_hub_fails_cleanly():
    code, _, err = await run("admin", "--admin-port", str(free_port()), "status")
    assert code == 1 and "no devhub admin channel" in err


async def test_devhub_command_serves_the_default_and_replay_consumer_groups():
    # `processor replay` reads on `replay` by default: the README's path must find it.
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "devhub",
        "serve",
        "--port",
        str(port),
        "--admin-port",
        "-1",
        "--partitions",
        "1",
        "--consumer-group",
        "REPLAY",
        "--consumer-group",
        "Audit",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        cs = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
        groups = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
        assert groups == "# consumer groups: $Default, replay, Audit"
        await send(cs, ["hello"])
        readers = [
            Collector(consumer(cs, group=g), partition_id="0", starting_position="-1").start()
            for g in ("$Default", "replay", "audit")
        ]
        try:
            await asyncio.gather(*(r.wait_count(1) for r in readers))
        finally:
            await close_all(*readers)
        assert [r.bodies() for r in readers] == [["hello"]] * 3
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
