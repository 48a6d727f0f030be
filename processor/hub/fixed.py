"""The feeder's fixed-partitions mode, for a replay: each partition it is given is read from its span's start
up to its span's end, with no load balancing and no checkpoint store, so a replay claims no partition and moves
no checkpoint of anyone's.

One SDK client per partition: a partition that reached its end is closed on its own while the others go on (one
client cannot stop one of its partitions). Started as `python -m processor.hub.fixed`, set up as the feeder is,
with the partitions and their spans in its settings (`processor.hub.wire.settings_to_env`). Frames as the
load-balancing feeder's: nothing past a span's end is forwarded, `Closed(partition, False)` says the partition
reached it, and the process exits 0 once every partition did. `STOP` on stdin ends it sooner; end of file there
means the parent is gone, and it exits at once.

Imports the SDK, the feeder's parts and the hub's clients.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any

from azure.eventhub import EventData
from azure.eventhub.aio import PartitionContext

from processor.config import Settings
from processor.hub.clients import consumer_client, starting_position
from processor.hub.feeder import error_frame, parent_command, prepare, stdout_sender, to_delivery
from processor.hub.wire import ENV, STOP, Batch, Closed, Error, Frame, Opened, Span, partitions_from_env

Send = Callable[[Frame], Awaitable[None]]


async def feed_fixed(settings: Settings, group: str, spans: dict[str, Span]) -> int:
    send = await stdout_sender()
    stopping = asyncio.Event()
    reading = asyncio.ensure_future(
        asyncio.gather(*(_read(settings, group, pid, span, send, stopping) for pid, span in spans.items()))
    )
    command = await parent_command()
    waiting: list[asyncio.Future[Any]] = [reading, command]
    await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
    if command.done():
        if command.result() != STOP:
            os._exit(3)  # the parent died: nobody reads what we would send
        stopping.set()
    try:
        await reading
    except Exception as exc:  # a receiver that stopped on its own: the parent says so and fails the replay
        await send(Error(f"receiving stopped: {exc!r}", None, None))
        return 1
    return 0


async def _read(settings: Settings, group: str, pid: str, span: Span, send: Send, stopping: asyncio.Event) -> None:
    """Forward partition `pid` over `span`; return when it reached the span's end or `stopping` is set."""
    client = consumer_client(settings, consumer_group=group)  # no checkpoint store: nothing claimed or written
    reached = asyncio.Event()

    async def on_batch(context: PartitionContext, events: list[EventData]) -> None:
        if reached.is_set() or not events:
            return
        batch = [to_delivery(e, False) for e in events]
        kept = [d for d in batch if d.sequence_number <= span.end]
        if kept:
            props = context.last_enqueued_event_properties or {}
            await send(Batch(pid, props.get("sequence_number"), kept))
        if batch[-1].sequence_number >= span.end:
            reached.set()

    async def on_open(context: PartitionContext) -> None:
        await send(Opened(pid))

    async def on_error(context: PartitionContext | None, error: Exception) -> None:
        await send(error_frame(context, error))

    receiving = asyncio.create_task(
        client.receive_batch(
            on_batch,
            partition_id=pid,
            max_batch_size=settings.max_batch_size,
            prefetch=settings.prefetch,
            # After the span's sequence number (where Capture ended), else where the settings say.
            starting_position=span.after if span.after is not None else starting_position(settings),
            starting_position_inclusive=False,
            track_last_enqueued_event_properties=True,
            on_partition_initialize=on_open,
            on_error=on_error,
        )
    )
    ended = asyncio.create_task(reached.wait())
    stopped = asyncio.create_task(stopping.wait())
    try:
        await asyncio.wait([receiving, ended, stopped], return_when=asyncio.FIRST_COMPLETED)
    finally:
        ended.cancel()
        stopped.cancel()
    if receiving.done():
        receiving.result()  # it returns only once the client closes: an exception says why it stopped
        raise RuntimeError(f"partition {pid}: the receiver stopped")
    await client.close()
    # close() has stopped the partition's consumer; the receive call itself would only return after the SDK's next
    # load-balancing sleep (measured: 10 s at the default interval), so it is cancelled.
    receiving.cancel()
    with suppress(asyncio.CancelledError):
        await receiving
    if reached.is_set():
        await send(Closed(pid, False))


def main() -> int:
    settings, group, _diagnostic_ids = prepare()
    spans = partitions_from_env(os.environ[ENV])
    assert spans is not None, "started by processor.replay, which names the partitions"
    return asyncio.run(feed_fixed(settings, group, spans))


if __name__ == "__main__":
    sys.exit(main())
