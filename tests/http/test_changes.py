"""/api/changes over real stores (SQLite and PostgreSQL, the store tests' `backend` fixture), through a real
aiohttp client: JSON pages and Server-Sent Events, with replicas writing through the real projector while
consumers read, restart, and the server restarts under them."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
import orjson

from processor.config import Settings
from processor.http.server import HttpHandle, start_http
from processor.stores.base import ProjectionStore
from processor.stores.feed import FeedRetention
from tests.http.helpers import serving
from tests.stores.conftest import backend, postgres_url  # noqa: F401 - the fixtures
from tests.stores.race import Stream, write
from tests.stores.test_contract import insert, row

TIMEOUT = aiohttp.ClientTimeout(total=60)  # a test that fails must not hang for aiohttp's default 5 minutes
SENTINEL = "zz/the-end"  # the last commit of a run: a consumer that saw it has seen everything


@dataclass
class Sse:
    """What one Server-Sent Events connection delivered: (event, id, data) per dispatched event, and the last
    event id as a browser would keep it (`id:`-only blocks move it too)."""

    events: list[tuple[str, int | None, Any]] = field(default_factory=list)
    last_id: int | None = None


async def read_sse(response: aiohttp.ClientResponse, stop: Any, sse: Sse) -> None:
    """Parse the stream until `stop(sse)` is true after a block (an event or an `id:` alone), or it ends."""
    fields: dict[str, str] = {}
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if line.startswith(":"):
            continue
        if line:
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
            continue
        if "id" in fields:
            sse.last_id = int(fields["id"])
        if "data" in fields:
            event_id = int(fields["id"]) if "id" in fields else None
            sse.events.append((fields.get("event", "message"), event_id, orjson.loads(fields["data"])))
        if fields and stop(sse):
            return
        fields = {}


class Server:
    """The HTTP server over a store of its own, restartable on the same port (a process restart)."""

    def __init__(self, make_store: Any):
        self.make_store = make_store
        self.store: ProjectionStore | None = None
        self.handle: HttpHandle | None = None
        self.address = "127.0.0.1:0"
        self.restarts = 0

    async def start(self) -> None:
        self.store = self.make_store()
        await self.store.open()
        self.handle = await start_http(replace(Settings(), http_address=self.address), self.store)
        self.address = f"127.0.0.1:{self.handle.port}"

    async def stop(self) -> None:
        if self.handle is not None:
            await self.handle.close()
        if self.store is not None:
            await self.store.close()
        self.handle = self.store = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()
        self.restarts += 1

    @property
    def url(self) -> str:
        return f"http://{self.address}/api/changes"


async def sse_consumer(server: Server, per_connection: int) -> list[dict]:
    """Reads the feed as SSE, `per_connection` events per connection (a consumer restarting), resuming with
    Last-Event-ID; restarts the server every third connection. Stops at the sentinel."""
    seen: list[dict] = []
    last = 0
    connections = 0
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        while not (seen and seen[-1]["object"] == SENTINEL):
            connections += 1
            if connections % 3 == 0:
                await server.restart()
            sse = Sse()
            headers = {"Accept": "text/event-stream", "Last-Event-ID": str(last)}
            try:
                async with session.get(server.url + "?limit=5", headers=headers) as response:
                    assert response.status == 200 and response.content_type == "text/event-stream"
                    await read_sse(
                        response,
                        lambda s: (
                            len(s.events) >= per_connection or (s.events and s.events[-1][2]["object"] == SENTINEL)
                        ),
                        sse,
                    )
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError):
                await asyncio.sleep(0.05)  # the server is restarting: try again (a pace, not a synchronisation)
            assert all(kind == "change" for kind, _, _ in sse.events), sse.events
            assert all(event_id == data["position"] for _, event_id, data in sse.events)
            # Nothing twice, nothing missed, in commit order: every connection goes on at the next position.
            positions = [data["position"] for _, _, data in sse.events]
            assert positions == list(range(len(seen) + 1, len(seen) + 1 + len(positions))), (len(seen), positions)
            seen += [data for _, _, data in sse.events]
            last = sse.last_id if sse.last_id is not None else last
    return seen


async def page_consumer(server: Server) -> list[dict]:
    """Reads the feed in JSON pages of 3 after each `next`, through the server's restarts."""
    seen: list[dict] = []
    after = 0
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        while not (seen and seen[-1]["object"] == SENTINEL):
            try:
                async with session.get(server.url, params={"after": after, "limit": 3}) as response:
                    assert response.status == 200, await response.text()
                    page = await response.json()
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError):
                await asyncio.sleep(0.05)
                continue
            positions = [c["position"] for c in page["changes"]]
            assert positions == list(range(len(seen) + 1, len(seen) + 1 + len(positions))), (len(seen), positions)
            seen += page["changes"]
            after = page["next"]
            await asyncio.sleep(0)
    return seen


def replayed(changes: list[dict]) -> dict:
    view: dict = {}
    for c in changes:
        key = (c["source"], c["object"])
        assert c["revision"] == view.get(key, {"revision": 0})["revision"] + 1, f"{key} out of order or missed"
        view[key] = c
    return {k: (c["event_type"], c["event_id"], c["sequencer"], c["etag"], c["state"]) for k, c in view.items()}


async def test_two_writers_and_slow_restarting_consumers_replay_the_feed_to_the_projection(backend):  # noqa: F811
    stream = Stream(600, 5)
    writers = [backend.new_store(), backend.new_store()]
    server = Server(backend.new_store)
    for s in writers:
        await s.open()
    await server.start()
    try:

        async def write_all() -> None:
            await asyncio.gather(*(write(s, stream.plan(5, n, 2)) for n, s in enumerate(writers)))
            await writers[0].commit([insert(row(SENTINEL))], [])

        writing = asyncio.ensure_future(write_all())
        by_sse, by_pages = await asyncio.gather(sse_consumer(server, 40), page_consumer(server))
        await writing
        final = {
            r.key: (r.event_type, r.event_id, r.sequencer, r.etag, r.to_json()["state"])
            async for r in writers[0].export()
        }
    finally:
        for s in writers:
            await s.close()
        await server.stop()
    assert server.restarts >= 2
    # Nothing twice, nothing missed, in commit order: positions 1, 2, 3, ... to the sentinel's.
    assert [c["position"] for c in by_sse] == list(range(1, len(by_sse) + 1))
    assert by_pages == by_sse
    assert replayed(by_sse) == final
    assert len(final) > len(stream.events)  # every object of the stream (and storage containers), the sentinel


async def test_a_filtered_stream_sees_its_part_of_the_feed_and_resumes_past_what_it_filtered(sqlite_store):
    rows = [
        row(f"{'runs' if i % 3 else 'models'}/{i}", state={"status": "Failed" if i % 2 else "Ok"}) for i in range(12)
    ]
    rows += [row(f"models/x{i}") for i in range(3)]  # positions 13-15: filtered out
    for r in rows:
        await sqlite_store.commit([insert(r)], [])
    wanted = [i + 1 for i in range(12) if i % 3 and i % 2]
    assert wanted == [2, 6, 8, 12]
    async with serving(Settings(), sqlite_store) as client:
        headers = {"Accept": "text/event-stream"}
        url = client.url + "/api/changes?prefix=runs/&state.status=Failed&limit=2"

        async def connect(last_id: str | None, stop: Any, during: Any = None) -> Sse:
            sse = Sse()
            extra = {"Last-Event-ID": last_id} if last_id is not None else {}
            async with client.session.get(url, headers={**headers, **extra}, timeout=TIMEOUT) as response:
                if during is not None:
                    await during()
                await read_sse(response, stop, sse)
            return sse

        first = await connect(None, lambda s: len(s.events) == 2)
        assert [e for _, e, _ in first.events] == [2, 6] and first.last_id == 6
        # What follows the last match is filtered out: the stream still says how far it looked.
        rest = await connect("6", lambda s: s.last_id == 15)
        assert [e for _, e, _ in rest.events] == [8, 12]

        async def late_commit() -> None:
            await sqlite_store.commit([insert(row("runs/late", state={"status": "Failed"}))], [])

        late = await connect("15", lambda s: s.events, late_commit)
        assert [e for _, e, _ in late.events] == [16] and late.last_id == 16
        page = await client.json("/api/changes?after=0&type=nothing")
        assert (page["changes"], page["next"], page["head"], page["oldest"]) == ([], 16, 16, 1)


async def test_positions_older_than_retention_are_410_with_the_oldest_and_bad_positions_are_refused(sqlite_store):
    sqlite_store.retention = FeedRetention(max_changes=3, max_age=0)
    await sqlite_store.commit([insert(row(f"o{i}")) for i in range(10)], [])
    async with serving(Settings(), sqlite_store) as client:
        for headers, path in [
            ({}, "/api/changes?after=2"),
            ({}, "/api/changes"),
            ({"Accept": "text/event-stream", "Last-Event-ID": "6"}, "/api/changes"),
            ({"Accept": "text/event-stream"}, "/api/changes?after=0"),
        ]:
            status, data, _ = await client.get(path, headers=headers)
            assert status == 410 and data["oldest"] == 8 and "retention" in data["error"], (path, data)
        page = await client.json("/api/changes?after=7")
        assert [c["position"] for c in page["changes"]] == [8, 9, 10] and page["oldest"] == 8
        status, data, _ = await client.get("/api/changes?after=11")
        assert status == 409 and data["head"] == 10
        for query in ("after=-1", "after=x", "limit=0", "colour=red", "state.a-b=1"):
            status, data, _ = await client.get("/api/changes?" + query)
            assert status == 400 and data["error"], query
        status, _, _ = await client.get("/api/changes", headers={"Accept": "text/event-stream", "Last-Event-ID": "x"})
        assert status == 400


async def test_a_stream_that_falls_behind_retention_gets_an_expired_event_with_the_oldest_not_a_gap(sqlite_store):
    # 100 changes of 200 kB: far more than the socket buffers hold, so while the client reads nothing the
    # server's stream is held at an early one, reading the store a change at a time.
    big = "x" * 200_000
    for i in range(100):
        await sqlite_store.commit([insert(row(f"o{i:03d}", state={"pad": big}))], [])
    async with serving(Settings(), sqlite_store) as client:
        headers = {"Accept": "text/event-stream"}
        async with client.session.get(client.url + "/api/changes?limit=1", headers=headers, timeout=TIMEOUT) as r:
            assert r.status == 200
            assert await sqlite_store.prune_changes(FeedRetention(max_changes=10, max_age=0)) == (90, False)
            sse = Sse()
            await read_sse(r, lambda s: s.events and s.events[-1][0] == "expired", sse)
    *changes, (kind, _, body) = sse.events
    assert kind == "expired" and body["oldest"] == 91 and "retention" in body["error"]
    positions = [data["position"] for _, _, data in changes]
    assert positions == list(range(1, len(positions) + 1)) and len(positions) < 90
