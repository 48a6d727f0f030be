"""`processor serve` as users run it, and the dashboard over a token-protected API."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from dataclasses import replace
from pathlib import Path

import aiohttp

from processor.config import Settings
from tests.http.helpers import Elements, render, serving

PROCESSOR = Path(sys.executable).with_name("processor")


async def test_serve_command_serves_a_store_until_sigterm(filled_store, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PROCESSOR_")}
    proc = await asyncio.create_subprocess_exec(
        str(PROCESSOR),
        "serve",
        "--store",
        filled_store.url,
        "--address",
        "127.0.0.1:0",
        cwd=tmp_path,
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        url = None
        while url is None:
            line = await asyncio.wait_for(proc.stderr.readline(), 30)
            assert line, "serve exited before listening"
            if m := re.search(rb"serving (http://\S+?)/ ", line):
                url = m.group(1).decode()
        async with aiohttp.ClientSession() as session:
            async with session.get(url + "/readyz") as r:
                assert r.status == 200
            async with session.get(url + "/api/summary") as r:
                summary = await r.json()
        assert summary["objects"] == (await filled_store.counts())["objects"] and summary["worker"] is None
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_dashboard_asks_for_the_token_and_uses_it_from_the_fragment(filled_store, tmp_path):
    settings = replace(Settings(), api_token="dash-Token")
    async with serving(settings, filled_store) as client:
        locked = Elements(await render(client.url + "/", tmp_path / "p1", budget_ms=3000))
        assert "hidden" not in locked.by_id("auth"), "the token form shows on a 401"
        assert locked.by_id("status")["data-state"] == "auth"
        assert not locked.having("data-object")

        opened = Elements(await render(client.url + "/#token=dash-Token", tmp_path / "p2", budget_ms=3000))
        assert "hidden" in opened.by_id("auth")
        body = next(el for el in opened.found if el["tag"] == "body")
        assert body["data-loaded"] == "true", opened.by_id("error")["text"]
        shown = [el["data-object"] for el in opened.having("data-object")]
        assert shown == [r.object for r in await filled_store.recent(25)]
        assert len(opened.having("data-dead-letter")) == (await filled_store.counts())["dead_letters"]
        assert "No Event Hub is configured" in opened.by_id("partitions-note")["text"]
