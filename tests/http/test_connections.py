"""Connection limits on real sockets over loopback: a slow or missing request head and an idle keep-alive
connection are closed by the server, the connection count is capped by cutting the oldest, and a normal client
is answered throughout. Bounds here are short; the deadlines generous (nothing asserts how fast)."""

from __future__ import annotations

import asyncio

from processor.config import Settings
from processor.http.protocol import Limits
from tests.http.helpers import serving

DEADLINE = 20.0
REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def connect(port: int) -> Stream:
    return await asyncio.open_connection("127.0.0.1", port)


async def closed_by_server(reader: asyncio.StreamReader) -> bool:
    """Read until the server ends the connection: EOF, or a reset when it cut the socket with bytes unread."""
    try:
        while await reader.read(65536):
            pass
    except ConnectionResetError:
        pass
    return True


async def answer(stream: Stream, request: bytes = REQUEST) -> int:
    """Send one request on a kept-alive connection and read its whole response; the status code."""
    reader, writer = stream
    writer.write(request)
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), DEADLINE)
    lines = head.decode().split("\r\n")
    length = next(int(v) for k, _, v in (line.partition(": ") for line in lines) if k.lower() == "content-length")
    await asyncio.wait_for(reader.readexactly(length), DEADLINE)
    return int(lines[0].split()[1])


async def normal_client_answered(port: int) -> bool:
    reader, writer = await connect(port)
    try:
        return await answer((reader, writer), REQUEST.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")) == 200
    finally:
        writer.close()


async def test_a_dribbled_or_missing_request_head_is_closed_while_normal_clients_are_answered(filled_store):
    limits = Limits(head_timeout=1.0, idle_timeout=60, max_connections=50)
    async with serving(Settings(), filled_store, limits=limits) as client:
        port = client.handle.port
        slow = [await connect(port) for _ in range(6)]
        dribblers = [writer for _, writer in slow[:4]]  # the other two never send a byte
        for writer in dribblers:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        waiting = {asyncio.ensure_future(closed_by_server(reader)): writer for reader, writer in slow}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DEADLINE
        rounds = 0
        while waiting and loop.time() < deadline:
            for done in [task for task in waiting if task.done()]:
                waiting.pop(done).close()
            for writer in set(dribblers) & set(waiting.values()):
                writer.write(b"x")  # one byte at a time of a header that never ends (8190 bytes would be too long)
            assert await normal_client_answered(port)
            if waiting:
                await asyncio.wait(list(waiting), timeout=0.1)
            rounds += 1
        for task, writer in waiting.items():
            task.cancel()
            writer.close()
        assert not waiting, f"{len(waiting)} of 6 slow connections still open after {DEADLINE:.0f}s"
        assert await normal_client_answered(port)


async def test_an_idle_keep_alive_connection_is_closed_by_the_server(filled_store):
    async with serving(Settings(), filled_store, limits=Limits(head_timeout=60, idle_timeout=2.0)) as client:
        stream = await connect(client.handle.port)
        try:
            assert await answer(stream) == 200
            assert await answer(stream) == 200  # kept alive
            assert await asyncio.wait_for(closed_by_server(stream[0]), DEADLINE)
        finally:
            stream[1].close()
        assert await normal_client_answered(client.handle.port)


async def test_at_the_connection_cap_the_oldest_connection_is_cut_to_admit_a_new_one(filled_store):
    limits = Limits(head_timeout=60, idle_timeout=60, max_connections=4)
    async with serving(Settings(), filled_store, limits=limits) as client:
        port = client.handle.port
        streams = []
        try:
            for _ in range(4):
                streams.append(await connect(port))
                assert await answer(streams[-1]) == 200
            for oldest in range(3):  # each newcomer is answered and cuts the oldest; the others still answer
                streams.append(await connect(port))
                assert await answer(streams[-1]) == 200
                assert await asyncio.wait_for(closed_by_server(streams[oldest][0]), DEADLINE)
                assert await answer(streams[oldest + 1]) == 200
                assert client.handle.open_connections <= 4

            burst = [await connect(port) for _ in range(20)]  # far over the cap at once
            streams += burst
            for _, writer in burst:
                writer.write(REQUEST)
            await asyncio.gather(*(closed_or_answered(reader) for reader, _ in burst))
            assert client.handle.open_connections <= 4
            assert await normal_client_answered(port)
        finally:
            for _, writer in streams:
                writer.close()


async def closed_or_answered(reader: asyncio.StreamReader) -> None:
    try:
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), DEADLINE)
    except (asyncio.IncompleteReadError, ConnectionResetError):
        pass
