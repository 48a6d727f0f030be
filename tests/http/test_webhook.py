"""The webhook against a real local aiohttp receiver: order, retries, signatures, resuming after a restart."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace

import orjson
import pytest
from aiohttp import web

from processor.config import ConfigError, Settings, load_settings
from processor.http import webhook
from processor.http.webhook import signature
from tests.http.helpers import serving, until
from tests.stores.test_contract import insert, row

SECRET = "hook-s3cret"


@dataclass
class Receiver:
    """Records every request; answers `refuse` statuses first, then 200."""

    refuse: list[int] = field(default_factory=list)
    requests: list[tuple[int, str, list[int]]] = field(default_factory=list)  # (answered, positions, body's)
    url: str = ""

    def accepted(self) -> list[int]:
        return [p for status, _, positions in self.requests if status == 200 for p in positions]

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        header = request.headers["X-Processor-Signature"]
        timestamp = int(header.split(",")[0].removeprefix("t="))
        assert hmac.compare_digest(header, signature(SECRET, timestamp, body)), "bad signature"
        assert header != signature(SECRET, timestamp, body + b" ")  # the signature covers the body
        positions = [c["position"] for c in orjson.loads(body)["changes"]]
        assert request.headers["X-Processor-Positions"] == f"{positions[0]}-{positions[-1]}"
        status = self.refuse.pop(0) if self.refuse else 200
        self.requests.append((status, request.headers["X-Processor-Positions"], positions))
        return web.Response(status=status)


@asynccontextmanager
async def receiving(receiver: Receiver) -> AsyncIterator[Receiver]:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield receiver
    finally:
        await runner.cleanup()


async def test_changes_are_pushed_in_order_signed_retried_and_resumed_after_a_restart(sqlite_store, monkeypatch):
    monkeypatch.setattr(webhook, "RETRY_FIRST", 0.01)
    for i in range(3):  # before the webhook existed: not pushed
        await sqlite_store.commit([insert(row(f"old/{i}"))], [])
    async with receiving(Receiver(refuse=[500, 503])) as receiver:
        settings = replace(Settings(), webhook_url=receiver.url, webhook_secret=SECRET, webhook_batch=2)
        async with serving(settings, sqlite_store):

            async def started() -> bool:  # it starts after the head it finds first
                return await sqlite_store.feed_cursor(webhook.cursor_name(receiver.url)) == 3

            await until(started, what="the webhook to start")
            for i in range(5):
                await sqlite_store.commit([insert(row(f"new/{i}"))], [])
            await until(lambda: receiver.accepted()[-1:] == [8], what="positions 4-8 delivered")
        # The first request was refused twice and sent again, the same changes each time.
        assert [(status, positions) for status, positions, _ in receiver.requests[:3]] == [
            (500, receiver.requests[0][1]),
            (503, receiver.requests[0][1]),
            (200, receiver.requests[0][1]),
        ]
        assert receiver.requests[0][2][0] == 4
        # Committed while the server is down; pushed after it starts again, from where the receiver acknowledged.
        for i in range(4):
            await sqlite_store.commit([insert(row(f"later/{i}"))], [])
        async with serving(settings, sqlite_store):
            await until(lambda: receiver.accepted()[-1:] == [12], what="positions 9-12 delivered")
    assert receiver.accepted() == list(range(4, 13))
    assert all(len(positions) <= 2 for _, _, positions in receiver.requests)


def test_a_webhook_url_without_a_secret_or_not_http_is_refused_naming_the_setting(tmp_path):
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    with pytest.raises(ConfigError, match="PROCESSOR_WEBHOOK_SECRET"):
        load_settings(env={"PROCESSOR_WEBHOOK_URL": "http://127.0.0.1:9/hook"}, path=empty)
    with pytest.raises(ConfigError, match="PROCESSOR_WEBHOOK_URL") as caught:
        load_settings(
            env={"PROCESSOR_WEBHOOK_URL": "ftp://user:tok3n@host/x", "PROCESSOR_WEBHOOK_SECRET": "s"}, path=empty
        )
    assert "tok3n" not in str(caught.value)
