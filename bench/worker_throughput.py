"""End-to-end worker throughput against the bare SDK consumer, and enqueue-to-commit latency.

Side by side in one run, against one local hub in a child process (4 partitions, the same prefilled realistic
Event Grid messages, the same prefetch):
- bare: an EventHubConsumerClient that only counts what it receives;
- worker: `run_worker` (what `processor run` runs): the feeder process receiving, then decode, reorder
  window, fold, SQLite commit, SQLite checkpoints.
Each reads from the start on a consumer group of its own; rounds alternate to even out machine noise.
The ratio worker/bare is the figure (target >= 0.85). Then, at a steady publishing rate, the latency from
enqueue (the hub's timestamp) to store commit, p50 and p99, for two reorder windows.

Usage: .venv/bin/python bench/worker_throughput.py [--events 20000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from azure.eventhub.aio import EventHubConsumerClient  # noqa: E402

from bench.devhub_consumer import free_port  # noqa: E402
from processor.config import Settings  # noqa: E402
from processor.hub.clients import producer_client  # noqa: E402
from processor.sim.traffic import deliver, lifecycle  # noqa: E402
from processor.worker.app import WorkerOptions, run_worker  # noqa: E402
from processor.worker.simulate import publish  # noqa: E402

PREFETCH = 300


async def bare(conn: str, group: str, n: int) -> float:
    client = EventHubConsumerClient.from_connection_string(conn, consumer_group=group, load_balancing_interval=0.5)
    done, state = asyncio.Event(), {"count": 0}

    async def on_batch(context, events):
        if events and state["count"] == 0:
            state["t0"], state["c0"] = time.perf_counter(), time.process_time()
        state["count"] += len(events)
        if state["count"] >= n and not done.is_set():
            state["t1"], state["c1"] = time.perf_counter(), time.process_time()
            done.set()

    task = asyncio.create_task(
        client.receive_batch(on_batch, max_batch_size=PREFETCH, prefetch=PREFETCH, starting_position="-1")
    )
    await asyncio.wait_for(done.wait(), 600)
    await client.close()
    await task
    return n / (state["t1"] - state["t0"]), (state["c1"] - state["c0"]) / n * 1e6


async def worker_run(settings: Settings, group: str, n: int) -> float:
    stop, state = asyncio.Event(), {}

    async def started(worker):
        original = worker.receive

        async def timed_receive(pid, events, last=None):
            if "t0" not in state:
                state["t0"], state["c0"] = time.perf_counter(), time.process_time()
            await original(pid, events, last)

        worker.receive = timed_receive

        async def watch():
            while True:
                s = worker.tally.summary()
                if s["applied"] + s["stale"] + s["duplicate"] + s["dead_lettered"] >= n:
                    state["t1"], state["c1"] = time.perf_counter(), time.process_time()
                    stop.set()
                    return
                await asyncio.sleep(0.02)  # observer's polling interval

        asyncio.create_task(watch())

    await run_worker(settings, stop, WorkerOptions(on_started=started, consumer_group=group))
    return n / (state["t1"] - state["t0"]), (state["c1"] - state["c0"]) / n * 1e6


async def latency(settings: Settings, group: str, rate: float, seconds: float) -> tuple[float, float, int]:
    stop, enqueued, lat = asyncio.Event(), {}, []

    async def started(worker):
        original_receive, original_apply = worker.receive, worker.projector.apply

        async def receive(pid, events, last=None):
            for delivery in events:
                enqueued[(pid, delivery.sequence_number)] = delivery.enqueued
            await original_receive(pid, events, last)

        async def apply(released, dead):
            await original_apply(released, dead)
            now = time.time()
            for evs in released.values():
                for ev in evs:
                    t = enqueued.pop((ev.origin.partition, ev.origin.sequence_number), None)
                    if t is not None:
                        lat.append(now - t)

        worker.receive, worker.projector.apply = receive, apply

    task = asyncio.create_task(run_worker(settings, stop, WorkerOptions(on_started=started, consumer_group=group)))
    await asyncio.sleep(2.0)  # let it claim its partitions before the clock starts
    async with producer_client(settings) as producer:
        await publish(producer, deliver(lifecycle(int(rate * seconds), seed=99), seed=98), rate=rate)
    await asyncio.sleep(settings.reorder_window + 2.0)  # the last events' window, then the commit
    stop.set()
    await task
    lat.sort()
    return lat[len(lat) // 2], lat[int(len(lat) * 0.9)], lat[int(len(lat) * 0.99)], len(lat)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rate", type=float, default=800.0)
    args = parser.parse_args()
    port = free_port()
    groups = [f"g{i}" for i in range(2 * args.rounds + 2)]
    cg_flags = [flag for g in groups for flag in ("--consumer-group", g)]
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
        "events",
        *cg_flags,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        conn = (await asyncio.wait_for(hub.stdout.readline(), 30)).decode().strip()
        with tempfile.TemporaryDirectory() as folder:

            def settings_for(name: str, window: float, start: str = "earliest") -> Settings:
                return replace(
                    Settings(),
                    eventhub_connection_string=conn,
                    prefetch=PREFETCH,
                    store_url=f"sqlite:///{folder}/{name}.sqlite",
                    checkpoint_url=f"sqlite:///{folder}/{name}-cp.sqlite",
                    reorder_window=window,
                    load_balancing_interval=0.5,
                    starting_position=start,
                )

            messages = list(deliver(lifecycle(args.events, seed=5), seed=6))
            async with producer_client(settings_for("fill", 0)) as producer:
                await publish(producer, messages)
            n = len(messages)
            print(f"{n} realistic messages prefilled over 4 partitions, prefetch {PREFETCH}")
            bare_rates, worker_rates, bare_cpu, worker_cpu = [], [], [], []
            for r in range(args.rounds):
                rate, cpu = await bare(conn, groups[2 * r], n)
                bare_rates.append(rate)
                bare_cpu.append(cpu)
                rate, cpu = await worker_run(settings_for(f"w{r}", 0.2), groups[2 * r + 1], n)
                worker_rates.append(rate)
                worker_cpu.append(cpu)
                print(
                    f"round {r}: bare {bare_rates[-1]:,.0f} msg/s ({bare_cpu[-1]:.0f} us CPU/msg)   "
                    f"worker {worker_rates[-1]:,.0f} msg/s ({worker_cpu[-1]:.0f} us CPU/msg)"
                )
            b, w = statistics.median(bare_rates), statistics.median(worker_rates)
            print(f"RATIO worker / bare consumer: {w / b:.2f}  (target >= 0.85; reorder window 0.2 s)")
            print(
                f"CPU per message: bare consumer {statistics.median(bare_cpu):.0f} us; worker process "
                f"{statistics.median(worker_cpu):.0f} us (its feeder child, which runs the SDK, not counted)"
            )

            for i, window in enumerate((2.0, 0.2)):
                p50, p90, p99, count = await latency(
                    settings_for(f"lat{i}", window, "latest"), groups[-2 + i], args.rate, 10
                )
                print(
                    f"latency enqueue -> store commit at {args.rate:.0f} msg/s, reorder window {window} s: "
                    f"p50 {p50 * 1000:.0f} ms, p90 {p90 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms ({count} events)"
                )
    finally:
        hub.terminate()
        await hub.wait()


if __name__ == "__main__":
    asyncio.run(main())
