"""Capture replay throughput against reading the same Capture files bare, and the peak memory of each.

Writes 100k realistic messages as Event Hubs Capture files (4 partitions, deflate, Capture's schema and layout),
then measures in the same run, each in a fresh process (its own peak RSS):
  - bare read: fastavro over every file, touching each record's body (the floor of any Capture reader);
  - Capture replay: `processor ingest --capture` (the reader plus the streaming ingest into SQLite);
  - file ingest of the same bodies, one per line (to show what reading Capture adds to ingest).
Prints the ratios: Capture replay / bare read, and Capture replay / file ingest.

Usage: .venv/bin/python bench/capture_replay.py [--events 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def child(mode: str, folder: str) -> None:
    """Run one measurement in this process; print seconds, records and peak RSS as JSON."""
    from processor.config import Settings
    from processor.stores.registry import open_store

    records = 0
    if mode == "bare":
        import fastavro

        start = time.perf_counter()
        for path in sorted(Path(folder, "capture").rglob("*.avro")):
            with open(path, "rb") as f:
                for rec in fastavro.reader(f):
                    records += len(rec["Body"]) > 0
        seconds = time.perf_counter() - start
    else:
        from processor.capture import open_capture
        from processor.ingest import ingest, ingest_messages, read_lines

        async def run() -> tuple[float, int]:
            store = open_store(f"sqlite:///{folder}/{mode}-{time.monotonic_ns()}.sqlite")
            await store.open()
            try:
                start = time.perf_counter()
                if mode == "capture":
                    reader = open_capture(str(Path(folder, "capture")), Settings())
                    tally = await ingest_messages(reader.messages(), Settings(), store)
                else:
                    tally = await ingest(read_lines([str(Path(folder, "bodies.jsonl"))]), Settings(), store)
                return time.perf_counter() - start, tally.read
            finally:
                await store.close()

        seconds, records = asyncio.run(run())
    # VmHWM, not getrusage's ru_maxrss: that one keeps the parent's peak across fork and exec.
    hwm = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmHWM:"))
    rss_mb = int(hwm.split()[1]) / 1024
    print(json.dumps({"seconds": seconds, "records": records, "rss_mb": rss_mb}))


def measure(mode: str, folder: str) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, folder], capture_output=True, check=True, text=True
    )
    return json.loads(done.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    from processor.sim.traffic import deliver, lifecycle
    from tests.support.capture import capture_files, records_of, write_folder

    bodies = [m.body for m in deliver(lifecycle(args.events, seed=1), seed=2)]
    with tempfile.TemporaryDirectory() as folder:
        files = capture_files(records_of(bodies, partitions=4), per_file=5000, idle_window_after=None)
        write_folder(Path(folder, "capture"), files)
        Path(folder, "bodies.jsonl").write_bytes(b"\n".join(bodies) + b"\n")
        size = sum(map(len, files.values()))
        print(f"Capture: {len(bodies)} messages in {len(files)} files, {size / 1e6:.1f} MB (deflate)")

        results: dict[str, list[dict]] = {"bare": [], "capture": [], "file": []}
        for _ in range(args.rounds):  # interleaved: a slow spell of the machine falls on all three
            for mode in results:
                results[mode].append(measure(mode, folder))
        best = {mode: min(runs, key=lambda r: r["seconds"]) for mode, runs in results.items()}
        n = len(bodies)
        for mode, label in (("bare", "bare fastavro read"), ("capture", "Capture replay"), ("file", "file ingest")):
            r = best[mode]
            print(
                f"{label:<20} {n / r['seconds']:>10,.0f} msg/s  ({r['seconds'] / n * 1e6:5.1f} us/msg)  "
                f"peak RSS {max(x['rss_mb'] for x in results[mode]):.0f} MB"
            )
        print(f"RATIO Capture replay / bare fastavro read: {best['bare']['seconds'] / best['capture']['seconds']:.2f}")
        print(f"RATIO Capture replay / file ingest:        {best['file']['seconds'] / best['capture']['seconds']:.2f}")


if __name__ == "__main__":
    main()
