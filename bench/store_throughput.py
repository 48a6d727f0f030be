"""Store throughput: the same realistic stream ingested into SQLite and into PostgreSQL, in the same run.

Prints
- ingest msgs/s for each store and the ratio PostgreSQL / SQLite (absolute rates drift on shared machines,
  the ratio much less);
- the latency of one commit (and one load) per batch of N objects, for inserts and for compare-and-set
  updates, median of several, for both stores.

PostgreSQL: a database created for the run and dropped at its end, on the server of PROCESSOR_BENCH_POSTGRES_URL
(or PROCESSOR_TEST_POSTGRES_URL; default postgresql://postgres@127.0.0.1:5432/postgres).

Usage: .venv/bin/python bench/store_throughput.py [--events 100000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ingest_throughput import make_stream, timed_ingest  # noqa: E402
from processor.core.model import Row, Write  # noqa: E402
from processor.stores.base import ProjectionStore  # noqa: E402
from processor.stores.registry import open_store  # noqa: E402

ADMIN_URL = os.environ.get("PROCESSOR_BENCH_POSTGRES_URL") or os.environ.get(
    "PROCESSOR_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BATCHES = (1, 10, 100, 1000, 5000)


async def admin(statement: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL, timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


async def reset(store: ProjectionStore) -> None:
    """Empty tables, so that every round starts from the same place."""
    url = store.url
    if url.startswith("sqlite"):
        path = url[len("sqlite:///") :]
        for suffix in ("", "-wal", "-shm"):
            Path(path + suffix).unlink(missing_ok=True)
        return
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DROP TABLE IF EXISTS projection, dead_letters, meta, changes, feed, history")
    finally:
        await conn.close()


async def ingest_once(url: str, lines: list[bytes]) -> tuple[float, dict]:
    await reset(open_store(url))
    return await timed_ingest(url, lines)


def rows(n: int, round_: int, seq: int) -> list[Row]:
    state = {
        "status": "Running",
        "experiment": "exp-1",
        "tags": {"team": "nlp", "step": "3"},
        "transitions": [{"status": "Queued", "at": "2026-11-01T00:00:00.0000000Z"}] * 3,
    }
    return [
        Row(
            "/subscriptions/s/resourcegroups/rg/providers/microsoft.machinelearningservices/workspaces/ws-0",
            f"runs/r{round_}-{i:06d}",
            "Microsoft.MachineLearningServices.RunStatusChanged",
            f"id-{seq}-{i}",
            f"2026-11-01T00:00:{seq:02d}.0000000Z",
            None,
            state,
            "2026-11-01T00:00:00.000000Z",
            {},
            seq,
        )
        for i in range(n)
    ]


async def latencies(url: str, repeats: int) -> dict[int, tuple[float, float, float]]:
    """Per batch size: median ms of (insert commit, load, compare-and-set commit)."""
    store = open_store(url)
    await reset(store)
    await store.open()
    out = {}
    try:
        for n in BATCHES:
            ins, load, upd = [], [], []
            for r in range(repeats):
                first = rows(n, r + 1000 * n, 1)
                t0 = time.perf_counter()
                assert await store.commit([Write(x, None) for x in first], []) == set()
                t1 = time.perf_counter()
                await store.load([x.key for x in first])
                t2 = time.perf_counter()
                second = rows(n, r + 1000 * n, 2)
                assert await store.commit([Write(y, x.revision) for x, y in zip(first, second)], []) == set()
                t3 = time.perf_counter()
                ins.append(t1 - t0)
                load.append(t2 - t1)
                upd.append(t3 - t2)
            out[n] = tuple(statistics.median(v) * 1000 for v in (ins, load, upd))
    finally:
        await store.close()
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7, help="commits per batch size for the latency table")
    args = parser.parse_args()

    lines = make_stream(args.events)
    print(f"stream: {len(lines)} messages, {sum(map(len, lines)) / len(lines):.0f} bytes each on average")
    name = f"processor_bench_{secrets.token_hex(4)}"
    await admin(f"CREATE DATABASE {name}")
    pg_url = urlunsplit(urlsplit(ADMIN_URL)._replace(path="/" + name))
    try:
        with tempfile.TemporaryDirectory() as folder:
            stores = {"SQLite": f"sqlite:///{folder}/bench.sqlite", "PostgreSQL": pg_url}
            best: dict[str, float] = {}
            summaries = {}
            for _ in range(args.rounds):  # alternate, so that machine noise hits both alike
                for label, url in stores.items():
                    took, summaries[label] = await ingest_once(url, lines)
                    best[label] = min(best.get(label, took), took)
            assert summaries["SQLite"] == summaries["PostgreSQL"], summaries
            print(f"outcomes (both): {summaries['SQLite']}")
            for label in stores:
                print(
                    f"ingest into {label:<10}: {len(lines) / best[label]:>9,.0f} msg/s  "
                    f"({best[label] / len(lines) * 1e6:.1f} us/msg)"
                )
            print(f"RATIO PostgreSQL / SQLite ingest rate: {best['SQLite'] / best['PostgreSQL']:.2f}")

            print("\nper-batch latency, median ms (one commit of N objects, one load of them, one CAS commit):")
            table = {label: await latencies(url, args.repeats) for label, url in stores.items()}
            print(
                f"{'N':>5} | {'SQLite ins':>10} {'load':>7} {'cas':>8} | {'PG ins':>8} {'load':>7} {'cas':>8}"
                f" | {'PG/SQLite cas':>13}"
            )
            for n in BATCHES:
                s, p = table["SQLite"][n], table["PostgreSQL"][n]
                print(
                    f"{n:>5} | {s[0]:>10.2f} {s[1]:>7.2f} {s[2]:>8.2f} | {p[0]:>8.2f} {p[1]:>7.2f} {p[2]:>8.2f}"
                    f" | {p[2] / s[2]:>13.2f}"
                )
    finally:
        await admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    asyncio.run(main())
