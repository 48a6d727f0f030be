"""Small waiting helpers: every wait has a deadline and fails loudly, none sleeps to synchronise."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from azure.eventhub import EventData
from azure.eventhub.aio import EventHubConsumerClient, EventHubProducerClient

DEADLINE = 20.0


async def eventually(predicate: Callable[[], Any], timeout: float = DEADLINE, what: str = "condition") -> Any:
    """Poll a cheap in-process predicate until it holds."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


class Collector:
    """Runs EventHubConsumerClient.receive in a task and records events and errors."""

    def __init__(self, client: EventHubConsumerClient, checkpoint: bool = False, **receive_kwargs: Any) -> None:
        self.client = client
        self.checkpoint = checkpoint
        self.events: list[tuple[str, EventData]] = []
        self.errors: list[BaseException] = []
        self.contexts: dict[str, Any] = {}
        self._changed = asyncio.Event()
        self._kwargs = receive_kwargs
        self._task: asyncio.Task | None = None

    async def _on_event(self, context, event) -> None:
        if event is None:
            return
        # Record first, then checkpoint (at least once, as the worker does): the SDK cancels a partition
        # task during this await when an equal owner level takes the partition over, and an event
        # checkpointed but not yet recorded would be lost, since its next owner starts after it.
        self.contexts[context.partition_id] = context
        self.events.append((context.partition_id, event))
        self._changed.set()
        if self.checkpoint:
            await context.update_checkpoint(event)

    async def _on_error(self, context, error) -> None:
        self.errors.append(error)
        self._changed.set()

    def start(self) -> Collector:
        self._task = asyncio.create_task(
            self.client.receive(on_event=self._on_event, on_error=self._on_error, **self._kwargs)
        )
        return self

    async def wait(self, predicate: Callable[[Collector], bool], timeout: float = DEADLINE, what: str = "") -> None:
        end = time.monotonic() + timeout
        while not predicate(self):
            if self._task is not None and self._task.done():
                self._task.result()
                raise AssertionError(f"receive() ended before {what or 'the condition'} held")
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {what or 'events'}; "
                    f"got {len(self.events)} events, errors {self.errors!r}"
                )
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass

    async def wait_count(self, n: int, timeout: float = DEADLINE) -> list[tuple[str, EventData]]:
        await self.wait(lambda c: len(c.events) >= n, timeout, f"{n} events")
        return self.events

    def bodies(self, partition: str | None = None) -> list[str]:
        return [e.body_as_str() for p, e in self.events if partition is None or p == partition]

    async def close(self) -> None:
        await self.client.close()
        if self._task is not None:
            await asyncio.wait_for(self._task, DEADLINE)


async def send(conn_str: str, bodies: list[str], **batch_kwargs: Any) -> None:
    async with EventHubProducerClient.from_connection_string(conn_str) as producer:
        batch = await producer.create_batch(**batch_kwargs)
        for body in bodies:
            batch.add(EventData(body))
        await producer.send_batch(batch)


async def send_partitions(conn_str: str, bodies_by_partition: dict[str, list[str]]) -> None:
    """One producer client for several partitions (each client costs the SDK about a second to open)."""
    async with EventHubProducerClient.from_connection_string(conn_str) as producer:
        for partition, bodies in bodies_by_partition.items():
            batch = await producer.create_batch(partition_id=partition)
            for body in bodies:
                batch.add(EventData(body))
            await producer.send_batch(batch)


def consumer(conn_str: str, group: str = "$default", **kwargs: Any) -> EventHubConsumerClient:
    # The processor loop sleeps a load-balancing interval between rounds and receive() only returns
    # after that sleep once closed: keep it short so closing does not take the default 30 s.
    kwargs.setdefault("load_balancing_interval", 0.5)
    return EventHubConsumerClient.from_connection_string(conn_str, consumer_group=group, **kwargs)


async def close_all(*collectors: Collector) -> None:
    """Closing a consumer client takes the SDK about a second: close several at once."""
    results = await asyncio.gather(*(c.close() for c in collectors), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
