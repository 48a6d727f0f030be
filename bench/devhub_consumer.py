"""Bare azure-eventhub consumer throughput against DevHub, and DevHub's own CPU cost per event.

The hub runs in a child process (`python -m devhub serve`), so its CPU time can be
read from /proc/<pid>/stat separately from the SDK consumer's (this process). Each scenario
pre-fills N events of ~100 bytes, then times one EventHubConsumerClient reading them all with
`receive_batch` from the first event to the last.

Reported per scenario: events/s, SDK consumer CPU µs/event, hub CPU µs/event, their ratio, and
events/s relative to a reference measured in the same run (orjson-decoding the same payloads in a
bare loop), so figures from different machines can be compared.

    .venv/bin/python bench/devhub_consumer.py [--events 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import time
from pathlib import Path

import orjson
from azure.eventhub import EventData
from azure.eventhub.aio import EventHubConsumerClient, EventHubProducerClient

REPO = Path(__file__).resolve().parents[1]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid: int) -> float:
    # /proc/<pid>/schedstat has nanosecond run time of the (single-threaded) hub; /proc/<pid>/stat only
    # clock ticks (10 ms), too coarse for a few seconds of a cheap process.
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            return int(f.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        pass
    # Fields 14 and 15 of /proc/<pid>/stat (utime, stime), counted after the parenthesised comm.
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def payload(i: int) -> bytes:
    body = orjson.dumps({"id": i, "subject": f"/devices/d-{i % 1000:05d}", "type": "bench.event", "v": i * 7})
    return body + b" " * max(0, 100 - len(body))


def reference_rate(n: int) -> float:
    """Events/s of a bare loop decoding the same payloads: the yardstick for this machine."""
    data = [payload(i) for i in range(n)]
    start = time.perf_counter()
    for raw in data:
        orjson.loads(raw)
    return n / (time.perf_counter() - start)


async def fill(conn_str: str, partitions: list[str], n: int) -> float:
    start = time.perf_counter()
    per = n // len(partitions)
    async with EventHubProducerClient.from_connection_string(conn_str) as producer:
        for pid in partitions:
            sent = 0
            while sent < per:
                batch = await producer.create_batch(partition_id=pid)
                while sent < per:
                    try:
                        batch.add(EventData(payload(sent)))
                    except ValueError:
                        break
                    sent += 1
                await producer.send_batch(batch)
    return per * len(partitions) / (time.perf_counter() - start)


async def consume(conn_str: str, hub_pid: int, n: int, prefetch: int, partition: str | None) -> dict:
    client = EventHubConsumerClient.from_connection_string(
        conn_str, consumer_group="$default", load_balancing_interval=0.5
    )
    done = asyncio.Event()
    state = {"count": 0}

    async def on_batch(context, events):
        if not events:
            return
        if state["count"] == 0:
            # The window opens after the first batch, which was delivered before it.
            state["t0"], state["cpu0"], state["hub0"] = (
                time.perf_counter(),
                time.process_time(),
                proc_cpu_seconds(hub_pid),
            )
            state["first"] = len(events)
        state["count"] += len(events)
        if state["count"] >= n and not done.is_set():
            state["t1"], state["cpu1"], state["hub1"] = (
                time.perf_counter(),
                time.process_time(),
                proc_cpu_seconds(hub_pid),
            )
            done.set()

    kwargs = {"partition_id": partition} if partition is not None else {}
    task = asyncio.create_task(
        client.receive_batch(on_batch, max_batch_size=prefetch, prefetch=prefetch, starting_position="-1", **kwargs)
    )
    try:
        await asyncio.wait_for(done.wait(), 300)
    finally:
        await client.close()
        await asyncio.wait_for(task, 60)
    timed = state["count"] - state["first"]
    wall = state["t1"] - state["t0"]
    return {
        "events": timed,
        "rate": timed / wall,
        "sdk_us": (state["cpu1"] - state["cpu0"]) / timed * 1e6,
        "hub_us": (state["hub1"] - state["hub0"]) / timed * 1e6,
    }


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20000, help="events per scenario (default 20000)")
    args = parser.parse_args()
    n = args.events

    port = free_port()
    hub = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "devhub",
        "serve",
        "--port",
        str(port),
        "--admin-port",
        "-1",
        "--partitions",
        "4",
        "--hub",
        "one",
        "--hub",
        "four",
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        conn = {}
        for _ in range(2):
            line = (await asyncio.wait_for(hub.stdout.readline(), 30)).decode().strip()
            conn[line.split("EntityPath=")[1].split(";")[0]] = line
        ref = reference_rate(200_000)
        fill_rate = await fill(conn["one"], ["0"], n)
        await fill(conn["four"], ["0", "1", "2", "3"], n)
        print(f"reference: bare orjson.loads loop on the same payloads: {ref:,.0f} events/s")
        print(f"producer fill (send_batch, 1 partition): {fill_rate:,.0f} events/s")
        print(f"{'scenario':<28}{'events/s':>10}{'vs ref':>9}{'SDK µs/ev':>11}{'hub µs/ev':>11}{'hub/SDK':>9}")
        for partitions, name, pid in ((1, "one", "0"), (4, "four", None)):
            for prefetch in (300, 3000):
                r = await consume(conn[name], hub.pid, n, prefetch, pid)
                label = f"{partitions} partition(s), prefetch {prefetch}"
                print(
                    f"{label:<28}{r['rate']:>10,.0f}{r['rate'] / ref:>9.4f}{r['sdk_us']:>11.1f}"
                    f"{r['hub_us']:>11.1f}{r['hub_us'] / r['sdk_us']:>9.3f}",
                    flush=True,
                )
    finally:
        hub.terminate()
        await hub.wait()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
