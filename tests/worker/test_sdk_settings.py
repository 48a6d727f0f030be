"""The Event Hubs SDK's knobs, as the settings give them, reach the SDK's clients and change what they do:
a custom endpoint address, an HTTP proxy (AMQP over WebSockets), retry options, a max batch size apart from
prefetch. Against the local hub, or a listener of the test's own where the hub cannot play the part."""

from __future__ import annotations

import asyncio
import base64
import re
import socket
from dataclasses import replace

from azure.eventhub import TransportType

from processor.hub.clients import consumer_client, producer_client
from processor.sim.traffic import deliver, lifecycle
from processor.worker.app import WorkerOptions, run_worker
from processor.worker.simulate import publish
from tests.worker.helpers import until, worker_settings


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_a_custom_endpoint_address_is_where_the_client_connects(devhub, tmp_path):
    settings = worker_settings(devhub, tmp_path, eventhub_retry_total=0)
    port = re.search(r"Endpoint=sb://127\.0\.0\.1:(\d+)", settings.eventhub_connection_string).group(1)
    # The connection string names a port nobody listens on: only the custom endpoint reaches the hub.
    nowhere = settings.eventhub_connection_string.replace(f":{port};", f":{closed_port()};")
    redirected = replace(
        settings, eventhub_connection_string=nowhere, eventhub_custom_endpoint=f"sb://127.0.0.1:{port}"
    )
    async with consumer_client(redirected) as client:
        assert await asyncio.wait_for(client.get_partition_ids(), 30) == ["0", "1", "2", "3"]
    async with producer_client(redirected) as producer:
        assert await asyncio.wait_for(producer.get_partition_ids(), 30) == ["0", "1", "2", "3"]


async def test_a_proxy_carries_amqp_over_websockets_with_its_credentials(devhub, tmp_path):
    heads: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            heads.append(await reader.readuntil(b"\r\n\r\n"))
        finally:
            writer.close()

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = worker_settings(
        devhub, tmp_path, eventhub_proxy=f"http://ops%40corp:s3cret@127.0.0.1:{port}", eventhub_retry_total=0
    )
    try:
        async with consumer_client(settings) as client:
            assert client._config.transport_type == TransportType.AmqpOverWebsocket  # the SDK's own configuration
            try:
                await asyncio.wait_for(client.get_partition_ids(), 30)
            except Exception:  # this proxy answers nothing: the request it received is what counts
                pass
    finally:
        server.close()
        await server.wait_closed()
    assert heads, "the client never reached the proxy"
    head = heads[0].decode()
    assert head.startswith("GET ws://127.0.0.1:443/$servicebus/websocket HTTP/1.1\r\n"), head
    assert "Upgrade: websocket" in head and "Sec-WebSocket-Protocol: AMQPWSB10" in head
    assert f"Proxy-Authorization: Basic {base64.b64encode(b'ops@corp:s3cret').decode()}" in head


async def test_retry_options_reach_the_client_and_it_still_works(devhub, tmp_path):
    settings = worker_settings(
        devhub,
        tmp_path,
        eventhub_retry_mode="fixed",
        eventhub_retry_total=7,
        eventhub_retry_backoff_factor=0.25,
        eventhub_retry_backoff_max=9.0,
    )
    async with consumer_client(settings) as client:
        config = client._config
        assert (config.retry_mode, config.retry_total, config.backoff_factor, config.backoff_max) == (
            "fixed",
            7,
            0.25,
            9.0,
        )
        assert config.transport_type == TransportType.Amqp
        assert len(await asyncio.wait_for(client.get_partition_ids(), 30)) == 4


async def test_batches_are_cut_at_max_batch_size_while_prefetch_stays(devhub, tmp_path):
    settings = worker_settings(devhub, tmp_path, max_batch_size=7, prefetch=300)
    messages = list(deliver(lifecycle(150, seed=5), seed=6))
    async with producer_client(settings) as producer:
        published = await publish(producer, messages)
    sizes: list[int] = []

    def started(worker) -> None:
        receive = worker.receive

        async def counting(partition_id, deliveries, last_enqueued=None):
            sizes.append(len(deliveries))
            await receive(partition_id, deliveries, last_enqueued)

        worker.receive = counting  # before its first frame: the feed looks the method up per frame

    stop = asyncio.Event()
    running = asyncio.create_task(run_worker(settings, stop, WorkerOptions(on_started=started)))
    try:
        await until(lambda: sum(sizes) >= published or running.done(), 60, "every message received")
    finally:
        stop.set()
        await running
    assert sum(sizes) == published and max(sizes) <= 7, sizes
    assert len(sizes) >= -(-published // 7)
