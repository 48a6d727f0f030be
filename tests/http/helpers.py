"""Shared by the HTTP tests: a served app with a real client, realistic data, a Prometheus text parser,
headless Chromium and an HTML scraper."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from processor.config import Settings
from processor.http.server import HttpHandle, start_http
from processor.sim.traffic import deliver, lifecycle
from tests.builders import blob_event, body

ODD_BLOB = "odd dir/50% off?#1.txt"  # a blob name that needs percent-encoding in a URL
POISON = [b"not json", b'{"no": "event"}', b"[1, 2]"]


def sample_lines(n_events: int = 600, seed: int = 3) -> list[tuple[str, bytes]]:
    """Realistic Event Grid traffic (two workspaces and a storage account), an odd blob name and poison."""
    bodies = [m.body for m in deliver(lifecycle(n_events, seed=seed), seed=seed + 1)]
    bodies.append(body(blob_event(ODD_BLOB, "0000000000000000000000000000A001000000000000000001")))
    bodies += POISON
    return [(f"sample:{i}", b) for i, b in enumerate(bodies, 1)]


@dataclass
class Client:
    handle: HttpHandle
    session: aiohttp.ClientSession
    token: str | None = None

    @property
    def url(self) -> str:
        return self.handle.url

    def _headers(self, auth: bool) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if auth and self.token else {}

    async def get(self, path: str, *, auth: bool = True, **kw: Any) -> tuple[int, Any, aiohttp.ClientResponse]:
        """(status, parsed JSON or text, response)."""
        headers = {**self._headers(auth), **kw.pop("headers", {})}
        async with self.session.get(self.url + path, headers=headers, **kw) as r:
            data = await r.json() if r.content_type == "application/json" else await r.text()
            return r.status, data, r

    async def json(self, path: str, **kw: Any) -> Any:
        status, data, _ = await self.get(path, **kw)
        assert status == 200, (path, status, data)
        return data


@asynccontextmanager
async def serving(settings: Settings, store: Any, worker: Any = None, **http: Any) -> AsyncIterator[Client]:
    """The HTTP server on a free loopback port; `http` goes to start_http (limits=...)."""
    settings = replace(settings, http_address="127.0.0.1:0")
    handle = await start_http(settings, store, worker, **http)
    assert handle.port > 0
    try:
        async with aiohttp.ClientSession() as session:
            yield Client(handle, session, settings.api_token)
    finally:
        await handle.close()


async def until(
    predicate: Callable[[], Awaitable[Any] | Any],
    timeout: float = 20.0,
    what: str = "condition",
    interval: float = 0.05,
) -> Any:
    """Poll `predicate` until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = predicate()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
        await asyncio.sleep(interval)


# --- Prometheus text exposition, parsed by prometheus-client's own parser ----------------------------


@dataclass
class Family:
    name: str  # as exposed: a counter's with its _total
    kind: str = ""
    help: str = ""
    samples: list[tuple[str, dict[str, str], float]] = field(default_factory=list)

    def value(self, suffix: str = "", **labels: str) -> float:
        found = [v for s, ls, v in self.samples if s == self.name + suffix and ls == labels]
        assert len(found) == 1, (self.name + suffix, labels, self.samples)
        return found[0]


def parse_metrics(text: str) -> dict[str, Family]:
    """Every family by its exposed name, as the reference parser reads it; each has HELP and TYPE."""
    assert text.endswith("\n"), "the exposition ends with a newline"
    families: dict[str, Family] = {}
    for parsed in text_string_to_metric_families(text):
        name = parsed.name + "_total" if parsed.type == "counter" else parsed.name
        assert name not in families, f"{name}: one family, its lines together"
        assert parsed.type in ("counter", "gauge", "histogram", "summary", "info"), (name, parsed.type)
        assert parsed.documentation, f"{name}: HELP"
        family = families[name] = Family(name, parsed.type, parsed.documentation)
        for sample in parsed.samples:
            assert parsed.type != "counter" or (sample.name == name and sample.value >= 0), sample
            family.samples.append((sample.name, dict(sample.labels), sample.value))
        if parsed.type == "histogram":
            check_histogram(family)
    return families


def check_histogram(family: Family) -> None:
    buckets = [(ls["le"], v) for s, ls, v in family.samples if s.endswith("_bucket")]
    assert buckets and buckets[-1][0] == "+Inf", "a histogram ends with le=+Inf"
    bounds = [float(le.replace("+Inf", "inf")) for le, _ in buckets]
    assert bounds == sorted(bounds) and len(set(bounds)) == len(bounds), "bucket bounds increase"
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), "buckets are cumulative"
    assert family.value("_count") == counts[-1], "_count equals the +Inf bucket"
    assert family.value("_sum") >= 0


# --- headless Chromium -----------------------------------------------------------------------------

CHROMIUM_HELP = (
    "chromium is needed for the dashboard test and is not installed: run `./dev setup` "
    "(as root it runs `apt-get install chromium`), or install it with your package manager"
)


def chromium() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None)
    if found is None:
        pytest.fail(CHROMIUM_HELP, pytrace=False)
    return found


async def render(url: str, profile: Path, *, screenshot: Path | None = None, budget_ms: int = 5000) -> str:
    """The DOM of `url` after `budget_ms` of virtual time (the page's refreshes included)."""
    args = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        f"--virtual-time-budget={budget_ms}",
        "--window-size=1400,1000",
    ]
    args += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    # A subprocess of the running loop: the server under test answers from this same loop meanwhile.
    proc = await asyncio.create_subprocess_exec(
        *args, url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail("chromium did not finish within 60s")
    assert proc.returncode == 0, err.decode(errors="replace")[-2000:]
    return out.decode()


class Elements(HTMLParser):
    """Every element's tag and attributes, with the text inside it, in document order."""

    VOID = {"meta", "link", "br", "img", "input", "hr", "source", "col", "wbr", "area", "base", "embed", "track"}

    def __init__(self, html: str):
        super().__init__()
        self.found: list[dict[str, Any]] = []
        self._open: list[dict[str, Any]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        el = {"tag": tag, **{k: (v if v is not None else "") for k, v in attrs}, "text": ""}
        self.found.append(el)
        if tag not in self.VOID:
            self._open.append(el)

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            if self._open.pop()["tag"] == tag:
                break

    def handle_data(self, data: str) -> None:
        for el in self._open:
            el["text"] += data

    def having(self, attr: str) -> list[dict[str, Any]]:
        return [el for el in self.found if attr in el]

    def by_id(self, ident: str) -> dict[str, Any]:
        matches = [el for el in self.found if el.get("id") == ident]
        assert len(matches) == 1, ident
        return matches[0]
