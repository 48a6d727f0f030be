"""Publish simulated Event Grid traffic to an Event Hub with the real producer client."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

from azure.eventhub import EventData
from azure.eventhub.aio import EventHubProducerClient

from processor.sim.traffic import Message


def event_data(message: Message) -> EventData:
    data = EventData(message.body)
    properties: dict[str | bytes, Any] = {}
    properties.update(message.properties)
    data.properties = properties
    data.content_type = "application/json"
    return data


async def publish(
    producer: EventHubProducerClient,
    messages: Iterable[Message],
    *,
    rate: float | None = None,
    by_subject: bool = False,
    batch_size: int = 100,
    stop: asyncio.Event | None = None,
    on_sent: Callable[[int], None] | None = None,
) -> int:
    """Send `messages` in batches; `rate` in messages per second (None = as fast as possible).

    With `by_subject`, each message goes with partition key = its subject, as an Event Grid subscription with
    a dynamic PartitionKey delivery property would send it, so one object's events share a partition.
    """
    sent = 0
    started = time.monotonic()
    pending: dict[str | None, list[Message]] = {}

    async def flush(key: str | None) -> None:
        nonlocal sent
        group = pending.pop(key, [])
        while group:
            batch = await producer.create_batch(partition_key=key) if key else await producer.create_batch()
            taken = 0
            for message in group:
                try:
                    batch.add(event_data(message))
                except ValueError:  # the batch is full at the hub's maximum size
                    break
                taken += 1
            if taken == 0:
                raise ValueError(f"a single message of {len(group[0].body)} bytes exceeds the hub's maximum size")
            await producer.send_batch(batch)
            sent += taken
            if on_sent is not None:
                on_sent(taken)
            group = group[taken:]

    for message in messages:
        if stop is not None and stop.is_set():
            break
        key = message.partition_key if by_subject else None
        pending.setdefault(key, []).append(message)
        if len(pending[key]) >= batch_size or (by_subject and len(pending) > 64):
            for k in list(pending):
                await flush(k)
        if rate:
            # Pace by the clock: how far ahead of schedule are we?
            ahead = (sent + sum(map(len, pending.values()))) / rate - (time.monotonic() - started)
            if ahead > 0.05:
                for k in list(pending):
                    await flush(k)
                await asyncio.sleep(ahead)
    for k in list(pending):
        await flush(k)
    return sent
