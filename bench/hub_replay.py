"""Parallel hub replay against as many bare SDK consumer processes, and the replay's peak memory.

Side by side in one run, against one local hub in a child process (4 partitions, the same prefilled realistic
Event Grid messages), for N = 1 and 2:
- bare: N child processes, each reading its round-robin share of the partitions with one EventHubConsumerClient
  per partition (as the replay's feeders do), at the replay's prefetch and batch size, only counting;
- replay: `processor.replay.replay_partitions` (what `processor replay --feeders N` runs): N feeder processes,
  decode, fold and SQLite writes in this process through the streaming ingest.
Each rate is messages over the window from the first message received to the last one received (bare) or to the
end of the fold, written to the store (replay); process start-up and SDK connection are outside both windows.
Rounds alternate to even out machine noise; the figure is replay / bare for the same N (target >= 0.8). Beside
them, file ingest of the same bodies from memory (`ingest_messages`, one process): the fold's own rate here,
which bounds the replay's.
Then `processor replay --feeders N` as a command, its peak RSS: the command and its feeders together (psutil,
sampled every 50 ms), else the largest single process (resource.getrusage RUSAGE_CHILDREN).

Usage: .venv/bin/python bench/hub_replay.py [--events 100000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.devhub_consumer import free_port  # noqa: E402
from processor import replay as replay_module  # noqa: E402
from processor.config import Settings  # noqa: E402
from processor.hub.clients import consumer_client, producer_client  # noqa: E402
from processor.hub.wire import Span  # noqa: E402
from processor.sim.traffic import deliver, lifecycle  # noqa: E402
from processor.stores.registry import open_store  # noqa: E402
from processor.worker.simulate import publish  # noqa: E402

PREFETCH, BATCH = Settings().replay_prefetch, Settings().replay_batch


async def bare_child(conn: str, group: str, ends: dict[str, int]) -> None:
    """One bare consumer process: its partitions up to their ends; prints {t0, t1, count} (wall clock)."""
    from azure.eventhub.aio import EventHubConsumerClient

    state = {"count": 0, "t0": None, "t1": None}
    done = {pid: asyncio.Event() for pid in ends}

    async def read(pid: str) -> None:
        client = EventHubConsumerClient.from_connection_string(conn, consumer_group=group)

        async def on_batch(context, events) -> None:
            if not events or done[pid].is_set():
                return
            if state["t0"] is None:
                state["t0"] = time.time()
            state["count"] += len(events)
            if events[-1].sequence_number >= ends[pid]:
                state["t1"] = time.time()
                done[pid].set()

        task = asyncio.create_task(
            client.receive_batch(
                on_batch, partition_id=pid, max_batch_size=BATCH, prefetch=PREFETCH, starting_position="-1"
            )
        )
        await done[pid].wait()
        await client.close()
        task.cancel()

    await asyncio.gather(*(read(pid) for pid in ends))
    print(json.dumps(state), flush=True)


async def bare(conn: str, group: str, ends: dict[str, int], n: int) -> float:
    shares = replay_module.split(list(ends), n)
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--bare-child",
            json.dumps({"conn": conn, "group": group, "ends": {pid: ends[pid] for pid in share}}),
            stdout=asyncio.subprocess.PIPE,
        )
        for share in shares
    ]
    results = [json.loads((await p.communicate())[0]) for p in procs]
    count = sum(r["count"] for r in results)
    return count / (max(r["t1"] for r in results) - min(r["t0"] for r in results))


async def replay(settings: Settings, group: str, ends: dict[str, int], n: int) -> float:
    state: dict[str, float] = {}
    original = replay_module.ingest_batches

    async def timed_ingest(*args, **kwargs):
        tally = await original(*args, **kwargs)
        state["t1"] = time.time()  # the fold's end, written; before the feeders are shut
        return tally

    def progress(done: int, total: int) -> None:
        state.setdefault("t0", time.time())

    replay_module.ingest_batches = timed_ingest
    store = open_store(settings.store_url)
    await store.open()
    try:
        spans = {pid: Span(end=end) for pid, end in ends.items()}
        result = await replay_module.replay_partitions(settings, store, group, spans, n, asyncio.Event(), progress)
    finally:
        replay_module.ingest_batches = original
        await store.close()
    assert result.complete
    # The first batch counts, as in the bare consumer's window.
    return result.messages / (state["t1"] - state["t0"])


async def file_ingest(settings: Settings, messages) -> float:
    """The same bodies folded from memory by the streaming ingest: what the fold alone reaches here."""
    from processor.ingest import ingest_messages

    store = open_store(settings.store_url)
    await store.open()
    try:
        lines = [(f"m{i}", m.body, m.properties.get("aeg-event-type")) for i, m in enumerate(messages)]
        started = time.perf_counter()
        await ingest_messages(lines, settings, store)
        return len(lines) / (time.perf_counter() - started)
    finally:
        await store.close()


async def peak_rss(conn: str, store_url: str, n: int) -> tuple[float, str]:
    """Peak RSS (MB) of `processor replay --feeders n`, and how it was measured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCESSOR_")}
    env |= {
        "PROCESSOR_EVENTHUB_CONNECTION_STRING": conn,
        "PROCESSOR_ALLOWED_SOURCES": "",
        "PROCESSOR_LOG_LEVEL": "WARNING",
    }
    command = [str(Path(sys.executable).with_name("processor")), "replay", "--store", store_url, "--feeders", str(n)]
    proc = await asyncio.create_subprocess_exec(*command, env=env, stdout=asyncio.subprocess.DEVNULL)
    try:
        import psutil
    except ImportError:
        await proc.wait()
        return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, "largest single process"
    parent, peak = psutil.Process(proc.pid), 0
    while proc.returncode is None:
        try:
            rss = sum(p.memory_info().rss for p in [parent, *parent.children(recursive=True)])
        except psutil.Error:  # a process ended between the listing and the reading
            rss = 0
        peak = max(peak, rss)
        try:
            await asyncio.wait_for(proc.wait(), 0.05)
        except TimeoutError:
            pass
    return peak / 2**20, "command and feeders together"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--bare-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_child:
        spec = json.loads(args.bare_child)
        await bare_child(spec["conn"], spec["group"], spec["ends"])
        return
    port = free_port()
    hub = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "devhub", "serve", "--port", str(port), "--admin-port", "-1"],
        *["--partitions", "4", "--hub", "events"],
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        conn = (await asyncio.wait_for(hub.stdout.readline(), 30)).decode().strip()
        with tempfile.TemporaryDirectory() as folder:
            settings = replace(Settings(), eventhub_connection_string=conn, allowed_sources=(), sources_configured=True)
            messages = list(deliver(lifecycle(args.events, seed=5), seed=6))
            async with producer_client(settings) as producer:
                await publish(producer, messages)
            async with consumer_client(settings, consumer_group="replay") as client:
                ends = {
                    pid: (await client.get_partition_properties(pid))["last_enqueued_sequence_number"]
                    for pid in await client.get_partition_ids()
                }
            print(f"{len(messages)} realistic messages prefilled over 4 partitions; prefetch {PREFETCH}, batch {BATCH}")
            medians: dict[int, tuple[float, float]] = {}
            ingest_rates = []
            for n in (1, 2):
                bare_rates, replay_rates = [], []
                for r in range(args.rounds):
                    url = f"sqlite:///{folder}/ingest-n{n}-r{r}.sqlite"
                    ingest_rates.append(await file_ingest(replace(settings, store_url=url), messages))
                    bare_rates.append(await bare(conn, "$Default", ends, n))
                    url = f"sqlite:///{folder}/n{n}-r{r}.sqlite"
                    replay_rates.append(await replay(replace(settings, store_url=url), "replay", ends, n))
                    print(f"N={n} round {r}: bare {bare_rates[-1]:,.0f} msg/s   replay {replay_rates[-1]:,.0f} msg/s")
                medians[n] = statistics.median(bare_rates), statistics.median(replay_rates)
                print(
                    f"RATIO N={n}: replay / {n} bare consumer process(es): {medians[n][1] / medians[n][0]:.2f}  "
                    "(target >= 0.8)"
                )
            scaling = [medians[2][i] / medians[1][i] for i in (0, 1)]
            print(f"scaling N=2 / N=1: bare {scaling[0]:.2f}, replay {scaling[1]:.2f}")
            fold = statistics.median(ingest_rates)
            print(
                f"file ingest of the same bodies (one process, from memory): {fold:,.0f} msg/s; replay / file ingest: "
                f"N=1 {medians[1][1] / fold:.2f}, N=2 {medians[2][1] / fold:.2f}"
            )
            for n in (1, 2):
                mb, how = await peak_rss(conn, f"sqlite:///{folder}/rss{n}.sqlite", n)
                print(f"peak RSS of `processor replay --feeders {n}`: {mb:.0f} MB ({how})")
    finally:
        hub.terminate()
        await hub.wait()


if __name__ == "__main__":
    asyncio.run(main())
