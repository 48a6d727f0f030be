"""The change feed's cost and speed, SQLite and PostgreSQL, every figure a ratio to a reference of the same run.

Prints
- the cost of the feed on file ingest: the ingest rate with the feed / without it (its triggers dropped), the
  same stream, rounds alternating (target >= 0.87, i.e. under 15% cost);
- the cost on the store alone: small compare-and-set commits (10 objects each) by 2 concurrent writers, with /
  without the feed (on PostgreSQL the feed's counter row makes committers queue for each other's commit);
- the cost of the object history (off by default) on the worker's path: the projector applying the stream in
  batches of 300 admitted events, history on / off;
- the feed to one SSE client while `processor ingest` (another process) commits: the client's delivery rate /
  the commit rate, and how long after the last commit the client had everything; then a backlog read from
  position 0 as SSE, its rate / the commit rate (target: >= 1, keeps up at the file ingest rate).

PostgreSQL: a database created for the run and dropped at its end, on the server of PROCESSOR_BENCH_POSTGRES_URL
(or PROCESSOR_TEST_POSTGRES_URL; default postgresql://postgres@127.0.0.1:5432/postgres).

Usage: .venv/bin/python bench/change_feed.py [--events 50000] [--rounds 2] [--stores sqlite,postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ingest_throughput import make_stream  # noqa: E402
from bench.store_throughput import ADMIN_URL, admin, reset  # noqa: E402
from processor.config import Settings  # noqa: E402
from processor.core.model import Row, Write  # noqa: E402
from processor.http.server import start_http  # noqa: E402
from processor.ingest import ingest  # noqa: E402
from processor.stores.base import ProjectionStore  # noqa: E402
from processor.stores.feed import ChangeQuery  # noqa: E402
from processor.stores.registry import open_store  # noqa: E402

PROCESSOR = Path(sys.executable).with_name("processor")


async def drop_feed(url: str) -> None:
    """The store without its feed: the triggers gone (a store opened later puts them back)."""
    if url.startswith("sqlite"):
        import sqlite3

        db = sqlite3.connect(url[len("sqlite:///") :])
        db.execute("DROP TRIGGER feed_on_insert")
        db.execute("DROP TRIGGER feed_on_update")
        db.commit()
        db.close()
        return
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("DROP TRIGGER feed_on_insert ON projection; DROP TRIGGER feed_on_update ON projection")
    finally:
        await conn.close()


async def fresh(url: str) -> None:
    await reset(open_store(url))


async def ingest_cost(url: str, lines: list[bytes], rounds: int) -> tuple[float, float]:
    """Best ingest seconds (with the feed, without it)."""
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(rounds):
        for feed in (False, True):
            await fresh(url)
            store = open_store(url)
            await store.open()
            if not feed:
                await drop_feed(url)  # after opening: an open puts the triggers back
            try:
                start = time.perf_counter()
                await ingest((("bench", line) for line in lines), Settings(), store)
                times[feed].append(time.perf_counter() - start)
            finally:
                await store.close()
    return min(times[True]), min(times[False])


def cas_rows(writer: int, step: int, revision: int) -> list[Write]:
    rows = [
        Row("/subscriptions/s/bench", f"w{writer}/o{i}", "T", f"e{step}", f"{step:08d}", None, {"s": step}, "t")
        for i in range(10)
    ]
    return [Write(replace(r, revision=revision + 1), revision if revision else None) for r in rows]


async def commit_rate(url: str, feed: bool, commits: int) -> float:
    """Commits per second of 2 concurrent writers, each `commits` commits of 10 compare-and-set writes."""
    await fresh(url)
    stores: list[ProjectionStore] = [open_store(url), open_store(url)]
    for s in stores:
        await s.open()
    if not feed:
        await drop_feed(url)  # opening put them back

    async def writer(n: int, store: ProjectionStore) -> None:
        for step in range(commits):
            failed = await store.commit(cas_rows(n, step, step), [])
            assert not failed

    try:
        start = time.perf_counter()
        await asyncio.gather(*(writer(n, s) for n, s in enumerate(stores)))
        return 2 * commits / (time.perf_counter() - start)
    finally:
        for s in stores:
            await s.close()


async def history_cost(url: str, lines: list[bytes], rounds: int) -> tuple[float, float]:
    """Best seconds for the projector to apply the admitted stream in batches of 300 events (history on, off)."""
    from processor.admission import make_intake
    from processor.core.model import Tally
    from processor.projector import Projector
    from processor.stores.history import HistoryRetention

    intake = make_intake(Settings())
    admitted = [ev for line in lines for ev in intake.admit(line, Tally())[0]]
    batches = []
    for i in range(0, len(admitted), 300):
        released: dict = {}
        for ev in admitted[i : i + 300]:
            released.setdefault(ev.key, []).append(ev)
        batches.append(released)
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(rounds):
        for on in (False, True):
            await fresh(url)
            store = open_store(url, history=HistoryRetention(100, 0) if on else None)
            await store.open()
            try:
                projector = Projector(store, Tally())
                start = time.perf_counter()
                for released in batches:
                    await projector.apply(released, [])
                times[on].append(time.perf_counter() - start)
            finally:
                await store.close()
    return min(times[True]), min(times[False])


async def sse_reader(url: str, after: int, until: int, arrived: list[float]) -> None:
    """Read SSE changes after `after` until position `until` is received; time of each arrival in `arrived`."""
    timeout = aiohttp.ClientTimeout(total=None, sock_read=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        headers = {"Accept": "text/event-stream", "Last-Event-ID": str(after)}
        async with session.get(url + "/api/changes?limit=1000", headers=headers) as response:
            async for line in response.content:
                if line.startswith(b"id: "):
                    arrived.append(time.perf_counter())
                    if int(line[4:]) >= until:
                        return


async def sse_figures(url: str, path: Path) -> tuple[float, float, float, int]:
    """(delivery rate / commit rate while ingesting, seconds from the last commit to the client having it,
    backlog SSE rate / commit rate, changes)."""
    await fresh(url)
    store = open_store(url)
    await store.open()
    handle = await start_http(replace(Settings(), http_address="127.0.0.1:0"), store)
    try:
        arrived: list[float] = []
        reader = asyncio.ensure_future(sse_reader(handle.url, 0, 2**62, arrived))
        start = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            str(PROCESSOR),
            "ingest",
            str(path),
            "--store",
            url,
            "--log-level",
            "error",
            stdout=asyncio.subprocess.DEVNULL,
        )
        assert await proc.wait() == 0
        committed = time.perf_counter()
        head = (await store.changes(ChangeQuery())).head
        while len(arrived) < head and not reader.done():
            await asyncio.sleep(0.01)
        reader.cancel()
        live_rate = len(arrived) / (arrived[-1] - start)
        commit_rate_ = head / (committed - start)
        catch_up = max(0.0, arrived[-1] - committed)
        backlog: list[float] = []
        begin = time.perf_counter()
        await sse_reader(handle.url, 0, head, backlog)
        backlog_rate = head / (time.perf_counter() - begin)
        return live_rate / commit_rate_, catch_up, backlog_rate / commit_rate_, head
    finally:
        await handle.close()
        await store.close()


async def run(kind: str, url: str, lines: list[bytes], path: Path, rounds: int) -> None:
    with_feed, without = await ingest_cost(url, lines, rounds)
    print(f"{kind}: ingest {len(lines) / with_feed:,.0f} msg/s with the feed, {len(lines) / without:,.0f} without")
    print(f"{kind}: RATIO ingest with / without the feed: {without / with_feed:.2f}  (target >= 0.87)")
    runs: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(rounds + 1):  # interleaved, the best of each: load from elsewhere falls on both alike
        for feed in (True, False):
            runs[feed].append(await commit_rate(url, feed, 1000))
    rates = {feed: max(r) for feed, r in runs.items()}
    print(
        f"{kind}: 2 writers x 10-object CAS commits: {rates[True]:,.0f} commits/s with, {rates[False]:,.0f} without; "
        f"RATIO {rates[True] / rates[False]:.2f}"
    )
    on, off = await history_cost(url, lines, rounds)
    print(f"{kind}: projector in batches of 300 events: RATIO with / without object history: {off / on:.2f}")
    live, catch_up, backlog, changes = await sse_figures(url, path)
    print(
        f"{kind}: SSE while ingesting {changes} changes: RATIO delivery / commit rate {live:.2f}, "
        f"last change {catch_up * 1000:.0f} ms after the last commit; backlog as SSE RATIO / commit rate {backlog:.2f}"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--stores", default="sqlite,postgres")
    args = parser.parse_args()
    lines = make_stream(args.events)
    print(f"stream: {len(lines)} messages")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "stream.jsonl"
        path.write_bytes(b"".join(line + b"\n" for line in lines))
        if "sqlite" in args.stores:
            await run("SQLite", f"sqlite:///{folder}/bench.sqlite", lines, path, args.rounds)
        if "postgres" in args.stores:
            name = f"processor_bench_{secrets.token_hex(4)}"
            await admin(f"CREATE DATABASE {name}")
            try:
                url = urlunsplit(urlsplit(ADMIN_URL)._replace(path="/" + name))
                await run("PostgreSQL", url, lines, path, args.rounds)
            finally:
                await admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


if __name__ == "__main__":
    asyncio.run(main())
