"""Peak memory of `processor ingest` against the number of distinct objects, with the default cache bound.

For 100k, 300k and 1M distinct blobs (about 1.25 messages each: creates, some overwrites and deletes, a few
redeliveries, shuffled), prints per size: peak RSS of a `processor ingest` child, its growth relative to the
smallest size, and the ingest rate as a ratio to bare `orjson.loads` of the same lines measured in the same
run. Targets (issue "Order-free projection"): peak < 400 MB at every size, growth 100k -> 1M < 1.5x.

Usage: .venv/bin/python bench/ingest_memory.py [--sizes 100000,300000,1000000] [--processes N]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

STORAGE = "/subscriptions/S1/resourceGroups/RG/providers/Microsoft.Storage/storageAccounts/acct1"

# The peak of the whole ingest: its own, plus each fold process's at most the largest one's (getrusage's
# RUSAGE_CHILDREN is the largest child's peak; they peak together, at the final commit).
_CHILD = """
import resource, sys, time
from processor.cli import main
started = time.perf_counter()
code = main(["ingest", "--processes", sys.argv[2], sys.argv[1]])
elapsed = time.perf_counter() - started
hwm = int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1])
folds = int(sys.argv[2]) if sys.argv[2] != "1" else 0
print(hwm + folds * resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, elapsed)
sys.exit(code)
"""


def blob_lines(objects: int, seed: int = 3) -> list[bytes]:
    rng = random.Random(seed)
    lines: list[bytes] = []
    sequencer = 0x10000000000000000000
    for i in range(objects):
        path = f"/blobServices/default/containers/data/blobs/part-{i // 1000:05d}/file-{i:08d}.parquet"
        writes = 1 + (rng.random() < 0.2)
        for w in range(writes):
            sequencer += 1
            deleted = w == writes - 1 and writes > 1 and rng.random() < 0.5
            event = {
                "id": f"{i:08d}-{w}",
                "topic": STORAGE,
                "subject": path,
                "eventType": "Microsoft.Storage.BlobDeleted" if deleted else "Microsoft.Storage.BlobCreated",
                "eventTime": f"2026-11-01T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}.{w:07d}Z",
                "data": {
                    "api": "DeleteBlob" if deleted else "PutBlob",
                    "clientRequestId": f"c-{i}",
                    "requestId": f"r-{i}-{w}",
                    "eTag": f"0x8DC{i:012X}{w}",
                    "contentType": "application/octet-stream",
                    "contentLength": 1000 + i % 5000,
                    "blobType": "BlockBlob",
                    "url": f"https://acct1.blob.core.windows.net/data/part-{i // 1000:05d}/file-{i:08d}.parquet",
                    "sequencer": f"{sequencer:032X}",
                    "storageDiagnostics": {"batchId": f"b-{i % 97}"},
                },
                "dataVersion": "",
                "metadataVersion": "1",
            }
            lines.append(orjson.dumps([event]))
        if rng.random() < 0.05:
            lines.append(lines[-1])  # a redelivery
    # Arrival order is no order: shuffle within windows of a few thousand, as a hub's partitions interleave.
    window = 5000
    for start in range(0, len(lines), window):
        chunk = lines[start : start + window]
        rng.shuffle(chunk)
        lines[start : start + window] = chunk
    return lines


def parse_seconds(lines: list[bytes]) -> float:
    loads = orjson.loads
    started = time.perf_counter()
    for line in lines:
        loads(line)
    return time.perf_counter() - started


def run_ingest(path: Path, folder: str, processes: int) -> tuple[int, float]:
    """(peak RSS in KiB, seconds inside `main`) of a `processor ingest` child into a fresh SQLite store."""
    env = {**os.environ, "PROCESSOR_STORE_URL": f"sqlite:///{folder}/p-{time.monotonic_ns()}.sqlite"}
    command = [sys.executable, "-c", _CHILD, str(path), str(processes)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"ingest failed: {done.stderr[-2000:]}")
    rss, seconds = done.stdout.strip().splitlines()[-1].split()
    return int(rss), float(seconds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,300000,1000000")
    parser.add_argument("--processes", type=int, default=1, help="fold processes (peak: the sum of all)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for n in sizes:
            lines = blob_lines(n)
            path = Path(folder) / f"blobs-{n}.jsonl"
            path.write_bytes(b"\n".join(lines) + b"\n")
            parse = min(parse_seconds(lines) for _ in range(2))
            rss, seconds = run_ingest(path, folder, args.processes)
            parse = min(parse, parse_seconds(lines))
            rows.append((n, len(lines), rss, parse / seconds))
            del lines
            path.unlink()
    base = rows[0][2]
    print(f"{'objects':>9} {'messages':>9} {'peak MB':>8} {'x smallest':>10} {'ingest/parse':>12}")
    for n, messages, rss, ratio in rows:
        print(f"{n:>9} {messages:>9} {rss / 1024:>8.0f} {rss / base:>10.2f} {ratio:>12.3f}")
    print("targets: peak < 400 MB at every size; growth from the smallest to the largest < 1.5x")


if __name__ == "__main__":
    main()
