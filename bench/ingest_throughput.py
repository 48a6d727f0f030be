"""Ingest throughput against parsing alone (peak memory: bench/ingest_memory.py).

Prints the ingest rate / `orjson.loads` rate over the same 100k realistic lines (target >= 0.4), both measured
in the same run (absolute times drift on shared machines).

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

from processor.config import Settings  # noqa: E402
from processor.ingest import ingest  # noqa: E402
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


async def timed_ingest(url: str, lines: list[bytes]) -> tuple[float, dict]:
    """Seconds to ingest `lines` into the store at `url`, and the outcomes."""
    store = open_store(url)
    await store.open()
    try:
        start = time.perf_counter()
        tally = await ingest((("bench", line) for line in lines), Settings(), store)
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

    with tempfile.TemporaryDirectory() as folder:
        parse = min(parse_only(lines) for _ in range(args.rounds))
        runs = [asyncio.run(timed_ingest(f"sqlite:///{folder}/bench-{i}.sqlite", lines)) for i in range(args.rounds)]
        parse = min(parse, min(parse_only(lines) for _ in range(args.rounds)))  # before and after: fair to both
        best, summary = min(runs, key=lambda r: r[0])
        print(f"outcomes: {summary}")
        print(f"parse only (orjson.loads): {len(lines) / parse:,.0f} msg/s")
        print(f"ingest into SQLite:        {len(lines) / best:,.0f} msg/s  ({best / len(lines) * 1e6:.1f} us/msg)")
        print(f"RATIO ingest / parse-only: {parse / best:.2f}  (target >= 0.40)")


if __name__ == "__main__":
    main()
