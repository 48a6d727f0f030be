"""Ingest throughput against parsing alone, and peak memory against stream length and reorder bound.

Prints ratios to a reference measured in the same run (absolute times drift on shared machines):
- ingest rate / `orjson.loads` rate over the same 100k realistic lines (target >= 0.4);
- peak RSS of `processor ingest` children for several stream lengths and bounds, relative to the smallest.

Usage: .venv/bin/python bench/ingest_throughput.py [--events 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from processor.config import Settings  # noqa: E402
from processor.ingest import ingest  # noqa: E402
from processor.sim.traffic import deliver, lifecycle  # noqa: E402
from processor.stores.base import open_store  # noqa: E402


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


_CHILD = """
import sys
from processor.cli import main
code = main(["ingest", sys.argv[1]])
# The high-water mark of this process's own memory (a fork's inherited pages do not count after exec).
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(int(hwm.split()[1]))
sys.exit(code)
"""


def peak_rss(lines_file: Path, folder: str, env: dict[str, str]) -> int:
    """Peak resident set of a `processor ingest` child, in KiB."""
    full_env = {**os.environ, **env, "PROCESSOR_STORE_URL": f"sqlite:///{folder}/rss-{time.monotonic_ns()}.sqlite"}
    done = subprocess.run([sys.executable, "-c", _CHILD, str(lines_file)], env=full_env, capture_output=True,
                          text=True, check=True)
    return int(done.stdout.strip().splitlines()[-1])


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

        print("\npeak memory of `processor ingest` (KiB, and relative to the first row):")
        rows = []
        for n in (args.events // 4, args.events // 2, args.events):
            path = Path(folder) / f"stream-{n}.jsonl"
            path.write_bytes(b"\n".join(make_stream(n, seed=5)) + b"\n")
            for bound in (10_000, 1_000_000):
                rows.append((n, bound, peak_rss(path, folder, {"PROCESSOR_REORDER_MAX_EVENTS": str(bound)})))
        base = rows[0][2]
        print(f"{'events':>8} {'bound':>9} {'peak KiB':>10} {'ratio':>6}")
        for n, bound, rss in rows:
            print(f"{n:>8} {bound:>9} {rss:>10} {rss / base:>6.2f}")


if __name__ == "__main__":
    main()
