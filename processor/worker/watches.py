"""The worker's watches over the hub, beside its flow: partitions that receive nothing while the hub holds newer
events (`StallWatch`), and a hub or consumer group that does not exist (`MissingWatch`, the loop around the
pure `Missing`). Each reports what it sees (logs, the worker's readiness) and changes nothing else.

Imports the hub's clients (the lines that name what is missing), the worker and its other parts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Literal

from azure.eventhub.aio import EventHubConsumerClient

from processor.config import Settings
from processor.hub.clients import missing_consumer_group, missing_hub
from processor.worker.missing import Missing
from processor.worker.retry import Streak
from processor.worker.worker import Worker

log = logging.getLogger(__name__)


class StallWatch:
    """Every `interval` seconds, asks the hub for each owned partition's last sequence number: a partition that
    received nothing for that long while the hub holds newer events is reported stalled, not silently stuck."""

    def __init__(self, worker: Worker, client: EventHubConsumerClient, interval: float, receive_errors: Streak):
        """`client`: a consumer client of the worker's own (receiving is the feeder's); `receive_errors`: the
        feeder's run of errors, over once a partition is seen receiving."""
        self.worker = worker
        self.client = client
        self.interval = interval
        self.receive_errors = receive_errors

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            for partition_id, state in list(self.worker.partitions.items()):
                try:
                    props = await self.client.get_partition_properties(partition_id)
                except Exception as exc:  # reported by the receive streak as well; nothing to decide here
                    log.debug(
                        "partition properties of %s unavailable: %r",
                        partition_id,
                        exc,
                        extra={"partition": partition_id},
                    )
                    continue
                state.last_enqueued = props["last_enqueued_sequence_number"]
                received = state.progress.last_received if state.progress.last_received is not None else -1
                idle = time.monotonic() - (state.last_received_at or state.opened_at)
                if props["last_enqueued_sequence_number"] > received and idle > self.interval:
                    if not state.stalled:
                        log.warning(
                            "partition %s is stalled: the hub has sequence number %d, the last received "
                            "is %d, nothing received for %.0fs",
                            partition_id,
                            props["last_enqueued_sequence_number"],
                            received,
                            idle,
                            extra={"partition": partition_id},
                        )
                    state.stalled = True
                elif received >= 0:
                    self.receive_errors.succeeded()


class MissingWatch:
    """While the hub or consumer group is missing: the worker unready, an ERROR now and then, and `HubNotFound`
    (from `run`) at the timeout. The feeder's frames tell it what happens (`not_found`, `opened`, ...)."""

    def __init__(self, worker: Worker, settings: Settings, consumer_group: str, report_every: float):
        self.worker = worker
        self.settings = settings
        self.consumer_group = consumer_group
        # An attach the service refuses takes the SDK a few seconds of its own retries: a partition open for
        # longer than this without a not-found has found its consumer group.
        self.missing = Missing(
            settings.not_found_timeout, quiet=max(30.0, 3 * settings.load_balancing_interval), report_every=report_every
        )
        self._seen = asyncio.Event()

    def not_found(self, what: Literal["hub", "consumer group"], partition: str | None) -> None:
        """The service said `what` does not exist (for `partition`'s receiver; None: load balancing)."""
        if what == "hub":
            line = missing_hub(self.settings)
        else:
            line = missing_consumer_group(self.settings, self.consumer_group)
        self.missing.failed(line, partition, time.monotonic())
        self.worker.consumer_alive = False  # unready: nothing can be consumed until someone creates it
        self._seen.set()

    def batch_received(self) -> None:
        if self.missing.active:
            self.missing.received()
            self.worker.consumer_alive = True

    def opened(self, partition: str) -> None:
        self.missing.opened(partition, time.monotonic())

    def closed(self, partition: str) -> None:
        self.missing.closed(partition)

    async def run(self) -> None:
        missing = self.missing
        while True:
            await self._seen.wait()
            now = time.monotonic()
            if missing.settled(now):
                log.warning(
                    "a partition has stayed open for %.0fs: what was missing exists now; ready again", missing.quiet
                )
                self.worker.consumer_alive = True
            if not missing.active:
                self._seen.clear()
                continue
            missing.check(now)
            if missing.report_due(now):
                log.error(
                    "%s; not ready, retrying; exits in %.0fs (PROCESSOR_NOT_FOUND_TIMEOUT) unless it appears",
                    missing.line,
                    missing.remaining(now),
                )
            await asyncio.sleep(min(1.0, max(0.01, missing.remaining(now)), missing.report_every))
