"""Two worker processes on four partitions; one is SIGKILLed at random moments and restarted, again and again.

Whatever the moment, every object must end with the file-ingest winner, and a monitor reading the store the
whole time must never see an object's (sequencer, event id) go backwards.
"""

import asyncio
import random
import signal
import sqlite3

from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore

from processor.hub.clients import producer_client
from processor.sim.traffic import deliver, lifecycle
from processor.worker.simulate import publish
from tests.worker.helpers import PROCESSOR, checkpoints_at_end, clean_env, oracle, projection, until, worker_settings
from tests.worker.processes import catches

KILLS = 5


def worker_env(settings, azurite) -> dict:
    return {
        **clean_env(),
        "PROCESSOR_EVENTHUB_CONNECTION_STRING": settings.eventhub_connection_string,
        "PROCESSOR_STORE_URL": settings.store_url,
        "PROCESSOR_CHECKPOINT_CONNECTION_STRING": azurite.connection_string,
        "PROCESSOR_CHECKPOINT_CONTAINER": "checkpoints",
        "PROCESSOR_REORDER_WINDOW": "0.3",
        "PROCESSOR_LOAD_BALANCING_INTERVAL": "0.5",
        "PROCESSOR_OWNERSHIP_EXPIRATION": "3",
        "PROCESSOR_CHECKPOINT_EVERY_SECONDS": "0.2",
        "PROCESSOR_CHECKPOINT_EVERY_EVENTS": "50",
        "PROCESSOR_SHUTDOWN_TIMEOUT": "10",
        "PROCESSOR_LOG_LEVEL": "WARNING",
    }


async def start_worker(env, cwd, log):
    return await asyncio.create_subprocess_exec(
        str(PROCESSOR), "run", "--no-http", env=env, cwd=cwd, stdout=log, stderr=log, stdin=asyncio.subprocess.DEVNULL
    )


class Monitor:
    """Reads the projection over and over; records any object whose order went backwards."""

    def __init__(self, path: str):
        self.path = path
        self.seen: dict[tuple[str, str], tuple[str, str]] = {}
        self.backwards: list[str] = []
        self.reads = 0

    def read_once(self) -> None:
        try:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
        except sqlite3.OperationalError:
            return  # not created yet
        try:
            rows = db.execute("SELECT source, object, sequencer, event_id FROM projection").fetchall()
        except sqlite3.OperationalError:
            return
        finally:
            db.close()
        self.reads += 1
        for source, obj, seq, eid in rows:
            before = self.seen.get((source, obj))
            if before is not None and (seq, eid) < before:
                self.backwards.append(f"{obj}: {before} -> {(seq, eid)}")
            self.seen[(source, obj)] = (seq, eid)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.to_thread(self.read_once)
            await asyncio.sleep(0.05)  # polling interval of the observer, not synchronisation


async def test_sigkill_at_random_moments_loses_nothing_and_never_moves_an_object_backwards(devhub, azurite, tmp_path):
    seed = random.randrange(1 << 30)
    rnd = random.Random(seed)
    print(f"crash test seed {seed}")
    messages = list(deliver(lifecycle(5000, seed=seed % 1000), seed=seed % 997))
    settings = worker_settings(devhub, tmp_path)
    env = worker_env(settings, azurite)
    log = open(tmp_path / "workers.log", "ab")
    workers = [await start_worker(env, tmp_path, log) for _ in range(2)]
    monitor = Monitor(settings.store_url[len("sqlite:///") :])
    stop_monitor = asyncio.Event()
    watching = asyncio.create_task(monitor.run(stop_monitor))
    kills = 0
    try:
        async with producer_client(settings) as producer:
            publishing = asyncio.create_task(publish(producer, messages, rate=500))
            while kills < KILLS or not publishing.done():
                await asyncio.sleep(rnd.uniform(0.3, 1.5))  # a random moment to crash at
                victim = rnd.randrange(2)
                workers[victim].send_signal(signal.SIGKILL)
                await workers[victim].wait()
                kills += 1
                workers[victim] = await start_worker(env, tmp_path, log)
            await publishing

        watcher = BlobCheckpointStore.from_connection_string(azurite.connection_string, "checkpoints")
        async with watcher:
            await until(
                lambda: checkpoints_at_end(watcher, settings, devhub, 4),
                120,
                "both workers to checkpoint the end of every partition",
            )
        for w in workers:
            # A worker restarted just now may still be inside the interpreter's start-up, where no program can
            # catch a signal yet (the kernel's default action would end it, 143): wait for that instant to pass.
            await until(
                lambda w=w: catches(w.pid) or w.returncode is not None, 30, "the worker to catch SIGTERM", every=0.01
            )
            w.send_signal(signal.SIGTERM)
        codes = [await asyncio.wait_for(w.wait(), 30) for w in workers]
        assert codes == [0, 0], (tmp_path / "workers.log").read_text(errors="replace")[-3000:]
    finally:
        for w in workers:
            if w.returncode is None:
                w.kill()
                await w.wait()
        stop_monitor.set()
        await watching
        log.close()

    expected = await oracle(messages, tmp_path)
    got = await projection(settings.store_url)
    assert got == expected, f"seed {seed}"  # whole states, not only winners: the fold is order-free
    assert kills >= KILLS
    assert monitor.reads > 20
    assert monitor.backwards == [], f"seed {seed}: {monitor.backwards[:5]}"
