"""`devhub demo` (what `./dev run` runs): the whole product on one machine, no Azure: the local hub in-process,
simulated Event Grid traffic, the worker with SQLite checkpoints and projection, and the HTTP dashboard, until the
time is up. Imports the hub (.server) and `processor`'s worker, simulator and HTTP server."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from processor.config import load_settings
from processor.hub.clients import producer_client
from processor.runtime import stop_on_signal
from processor.sim.traffic import deliver, lifecycle
from processor.worker.app import WorkerOptions, run_worker
from processor.worker.simulate import publish

from .server import DevHub, HubSpec


async def run_demo(args: argparse.Namespace) -> int:
    folder = Path(args.data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.sqlite*"):
        old.unlink()  # a demo starts from nothing; the hub is new each time too
    stop = asyncio.Event()
    stop_on_signal(stop)
    async with DevHub([HubSpec(name="events", partitions=4, consumer_groups=("$Default", "replay"))]) as hub:
        settings = replace(
            load_settings(path=getattr(args, "config", None)),
            eventhub_connection_string=hub.connection_string("events"),
            eventhub_namespace=None,
            store_url=f"sqlite:///{folder}/projection.sqlite",
            checkpoint_url=f"sqlite:///{folder}/checkpoints.sqlite",
            checkpoint_connection_string=None,
            checkpoint_account_url=None,
            starting_position="earliest",
            reorder_window=1.0,
            checkpoint_every_seconds=2.0,
            load_balancing_interval=2.0,
            http_address=args.http,
        )
        say(f"local Event Hubs endpoint: {hub.connection_string('events')}")
        say(f"projection: {settings.store_url}   checkpoints: {settings.checkpoint_url}")
        published = [0]
        started = time.monotonic()

        async def produce() -> None:
            async with producer_client(settings) as producer:
                messages = deliver(lifecycle(10_000_000, seed=int(time.time())), seed=1)
                await publish(
                    producer,
                    messages,
                    rate=args.rate,
                    stop=stop,
                    on_sent=lambda n: published.__setitem__(0, published[0] + n),
                )

        async def report(worker: Any) -> None:
            while not stop.is_set():
                await asyncio.sleep(2.0)
                counts = await worker.store.counts()
                t = worker.tally.summary()
                say(
                    f"{time.monotonic() - started:5.0f}s  published {published[0]:>6}  read {t['read']:>6}  "
                    f"applied {t['applied']:>6}  stale {t['stale']:>4}  duplicate {t['duplicate']:>4}  "
                    f"objects {counts['objects']:>5}  waiting in reorder window {len(worker.buffer):>4}"
                )

        servers: list[Any] = []

        async def started_worker(worker: Any) -> None:
            from processor.http.server import start_http

            try:
                server = await start_http(settings, worker.store, worker)
            except OSError as exc:  # the port is taken: a demo takes any free one rather than giving up
                host = settings.http_address.rpartition(":")[0]
                say(f"{settings.http_address} is not available ({exc.strerror}); using a free port instead")
                server = await start_http(replace(settings, http_address=f"{host}:0"), worker.store, worker)
            servers.append(server)
            address = f"{settings.http_address.rpartition(':')[0]}:{server.port}"
            say(f"dashboard: http://{address}/   API: http://{address}/api/objects")
            tasks.append(asyncio.create_task(report(worker)))

        tasks: list[asyncio.Task] = [asyncio.create_task(produce())]
        if args.duration > 0:
            tasks.append(asyncio.create_task(_stop_after(stop, args.duration)))
        say(f"running for {args.duration:.0f}s (Ctrl-C stops earlier)" if args.duration > 0 else "running until Ctrl-C")
        try:
            worker = await run_worker(settings, stop, WorkerOptions(on_started=started_worker, stall_check_interval=10))
        finally:
            for server in servers:
                await server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    summary = worker.tally.summary()
    say("done: " + "  ".join(f"{k.replace('_', '-')} {v}" for k, v in summary.items()))
    say(f"explore: .venv/bin/processor export --store {settings.store_url} | head")
    say(f"         .venv/bin/processor show runs/<id> --store {settings.store_url}")
    return 0


async def _stop_after(stop: asyncio.Event, seconds: float) -> None:
    await asyncio.sleep(seconds)
    stop.set()


def say(text: str) -> None:
    print(text, file=sys.stdout, flush=True)
