"""The worker's end of the feeder: starts the feeder process (`processor.hub.feeder`, the SDK consumer), applies
its frames to the worker in the order they came, and tells it when to stop.

When the worker dies, the feeder sees its stdin end and exits at once, releasing nothing (as a crash would);
a graceful stop is `stop` once the worker has committed and checkpointed, and the feeder then releases its
partitions for the next owner.

Imports the feeder's wire format and the worker's parts.
"""

from __future__ import annotations

import asyncio
import os
import sys
from contextlib import suppress

from processor.config import Settings
from processor.hub.wire import ENV, STOP, Batch, Closed, Error, Opened, read_frame, settings_to_env
from processor.worker.retry import Streak
from processor.worker.watches import MissingWatch
from processor.worker.worker import Worker


class Feed:
    def __init__(
        self, process: asyncio.subprocess.Process, worker: Worker, missing: MissingWatch, receive_errors: Streak
    ):
        """`missing` hears of what the service says does not exist, `receive_errors` of every other error."""
        self.process = process
        self.worker = worker
        self.missing = missing
        self.receive_errors = receive_errors
        self.stopping = False  # set when the worker shuts down: from then on the feeder's exit is expected

    @classmethod
    async def start(
        cls, settings: Settings, consumer_group: str, worker: Worker, missing: MissingWatch, receive_errors: Streak
    ) -> Feed:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "processor.hub.feeder",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            # The messages' Diagnostic-Ids travel only when the worker makes spans of its commits.
            env={**os.environ, ENV: settings_to_env(settings, consumer_group, diagnostic_ids=worker.spans is not None)},
            start_new_session=True,  # a Ctrl-C reaches the worker; the worker tells the feeder when to stop
        )
        return cls(process, worker, missing, receive_errors)

    async def consume(self) -> None:
        """Apply the feeder's frames in order until it ends; an end the worker did not ask for is an error."""
        worker, stdout = self.worker, self.process.stdout
        assert stdout is not None, "started with a pipe"
        worker.consumer_alive = True
        try:
            while (frame := await read_frame(stdout)) is not None:
                # The worker's methods are looked up per frame: tests and the benchmark wrap them once started.
                if isinstance(frame, Batch):
                    self.missing.batch_received()
                    await worker.receive(frame.partition, frame.deliveries, frame.last_enqueued)
                elif isinstance(frame, Opened):
                    self.missing.opened(frame.partition)
                    worker.open_partition(frame.partition)
                elif isinstance(frame, Closed):
                    self.missing.closed(frame.partition)
                    worker.close_partition(frame.partition, lost=frame.lost)
                elif isinstance(frame, Error) and frame.missing is not None:
                    self.missing.not_found(frame.missing, frame.partition)
                else:
                    self.receive_errors.failed(RuntimeError(frame.text))
        finally:
            worker.consumer_alive = False
        code = await self.process.wait()
        if not self.stopping:
            raise RuntimeError(f"the feeder process (the Event Hubs consumer) exited with code {code}")

    async def stop(self) -> None:
        """Tell the feeder to release its partitions and exit; `consume` returns once it has."""
        self.stopping = True
        with suppress(Exception):  # it may have exited already: consume has then seen its end
            assert self.process.stdin is not None, "started with a pipe"
            self.process.stdin.write(STOP)
            await self.process.stdin.drain()

    def kill(self) -> None:
        """End a feeder that does not stop in time; its ownership then expires for the next owner."""
        with suppress(ProcessLookupError):
            self.process.kill()
