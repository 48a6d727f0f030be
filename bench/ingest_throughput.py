"""Ingest throughput against parsing alone (peak memory: bench/ingest_memory.py).

Prints the ingest rate / `orjson.loads` rate over the same 100k realistic lines (target >= 0.4), both measured
in the same run (absolute times drift on shared machines), for one fold process and for one per core
(`processor.ingest_shards`), and the speed-up of the second over the first.

Usage: .venv/bin/python bench/ingest_throughput.py [--events 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import os  # noqa: E402
from dataclasses import replace  # noqa: E402

from processor.config import Settings  # noqa: E402
from processor.ingest import as_batches  # noqa: E402
from processor.ingest_shards import ingest_sharded  # noqa: E402
from processor.sim.traffic import deliver, lifecycle  # noqa: E402
from processor.stores.registry import open_store  # noqa: E402


def make_stream(n: int, seed: int = 1) -> list[bytes]:
    return [m.body for m in deliver(lifecycle(n, seed=seed), seed=seed + 1)]


def parse_only(lines: list[bytes]) -> float:
    loads = orjson.loads
    start = time.perf_counter()
    for line in lines:
        loads(line)
    return time.perf_counter() - start


async def timed_ingest(url: str, lines: list[bytes], processes: int) -> tuple[float, dict]:
    """Seconds to ingest `lines` into the store at `url` with `processes` fold processes, and the outcomes."""
    store = open_store(url)
    await store.open()
    try:
        settings = replace(Settings(), store_url=url, ingest_processes=processes)
        start = time.perf_counter()
        tally = await ingest_sharded(as_batches(("bench", line, None) for line in lines), settings, store)
        return time.perf_counter() - start, tally.summary()
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    lines = make_stream(args.events)
    size = sum(map(len, lines))
    print(f"stream: {len(lines)} messages, {size / len(lines):.0f} bytes each on average")

    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as folder:
        parse = min(parse_only(lines) for _ in range(args.rounds))
        best: dict[int, float] = {}
        for i in range(args.rounds):
            for processes in sorted({1, cores}):
                seconds, summary = asyncio.run(
                    timed_ingest(f"sqlite:///{folder}/b-{i}-{processes}.sqlite", lines, processes)
                )
                best[processes] = min(best.get(processes, seconds), seconds)
        parse = min(parse, min(parse_only(lines) for _ in range(args.rounds)))  # before and after: fair to both
        print(f"outcomes (last run): {summary}")
        print(f"parse only (orjson.loads): {len(lines) / parse:,.0f} msg/s")
        for processes, seconds in sorted(best.items()):
            print(
                f"ingest into SQLite, {processes} fold process(es): {len(lines) / seconds:,.0f} msg/s  "
                f"(RATIO ingest / parse-only: {parse / seconds:.3f}; target >= 0.40)"
            )
        if cores > 1:
            print(f"RATIO {cores} fold processes / 1: {best[1] / best[cores]:.2f}")


if __name__ == "__main__":
    main()
