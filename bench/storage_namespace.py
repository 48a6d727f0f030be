"""What the storage namespace costs file ingest: blob and data-lake streams, folded as storage objects (own
fields, timelines, renames and directories spread across rows, container rows) against the same events folded
by the plain per-key `merge` reducer (one row per subject, nothing across objects), in the same run.

Prints, per stream: namespace ingest rate / plain merge ingest rate, and each / bare `orjson.loads`.

Usage: .venv/bin/python bench/storage_namespace.py [--events 200000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from processor.config import Settings  # noqa: E402
from processor.ingest import ingest  # noqa: E402
from processor.sim.traffic import deliver, lifecycle  # noqa: E402
from processor.stores.registry import open_store  # noqa: E402

STORAGE_TYPES = [
    f"Microsoft.Storage.{t}"
    for t in (
        "BlobCreated",
        "BlobDeleted",
        "BlobRenamed",
        "DirectoryCreated",
        "DirectoryRenamed",
        "DirectoryDeleted",
    )
]
PLAIN = {"types": STORAGE_TYPES, "subjects": ["{subject}"], "object": "{subject}", "sequencer": "data.sequencer"}
PLAIN = {**PLAIN, "order": "string", "reducer": "merge"}


def streams(n: int) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {"flat blob account": [], "data lake (renames, directories)": []}
    for m in deliver(lifecycle(n, seed=3), seed=4):
        if m.event["eventType"].startswith("Microsoft.Storage."):
            key = "data lake (renames, directories)" if "mllake" in m.event["topic"] else "flat blob account"
            out[key].append(m.body)
    return out


def parse_only(lines: list[bytes]) -> float:
    start = time.perf_counter()
    for line in lines:
        orjson.loads(line)
    return time.perf_counter() - start


async def timed(url: str, lines: list[bytes], settings: Settings) -> float:
    store = open_store(url)
    await store.open()
    try:
        start = time.perf_counter()
        await ingest((("bench", line) for line in lines), settings, store)
        return time.perf_counter() - start
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000, help="events simulated (all sources)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each; the best counts")
    args = parser.parse_args()
    plain = replace(Settings(), catalog_types=(PLAIN,))
    with tempfile.TemporaryDirectory() as folder:
        for name, lines in streams(args.events).items():
            runs: dict[str, list[float]] = {"namespace": [], "plain": []}
            for i in range(args.rounds):  # alternated, so drift on a shared machine hits both alike
                runs["namespace"].append(asyncio.run(timed(f"sqlite:///{folder}/n{name[:4]}{i}.db", lines, Settings())))
                runs["plain"].append(asyncio.run(timed(f"sqlite:///{folder}/p{name[:4]}{i}.db", lines, plain)))
            parse = min(parse_only(lines) for _ in range(args.rounds))
            ns, pl = min(runs["namespace"]), min(runs["plain"])
            print(f"{name}: {len(lines)} messages")
            print(f"  namespace ingest: {len(lines) / ns:,.0f} msg/s, plain merge: {len(lines) / pl:,.0f} msg/s")
            print(f"  RATIO namespace / plain merge: {pl / ns:.2f}")
            print(f"  namespace / parse-only: {parse / ns:.3f}, plain / parse-only: {parse / pl:.3f}")


if __name__ == "__main__":
    main()
