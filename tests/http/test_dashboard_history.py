"""The dashboard's last hour, search and dead-letter view, in headless Chromium over a real worker run: the local
hub, realistic traffic and a dead letter whose body is markup, the worker sampling its figures every 0.5 s.

The worker is stopped before the page is drawn, so its samples (kept by the stopped worker, still served) are
the ones the test reads from /api/history and compares with what the SVG says it drew."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
import pytest_asyncio

from devhub import DevHub, HubSpec
from processor.config import Settings
from processor.hub.clients import producer_client
from processor.sim.traffic import Message, deliver, lifecycle
from processor.stores.sqlite import SqliteStore
from processor.worker.app import WorkerOptions, run_worker
from processor.worker.simulate import publish
from tests.http.helpers import Client, Elements, render, serving, until

pytestmark = pytest.mark.asyncio(loop_scope="module")

MARKUP = b'<img src=x onerror="document.body.dataset.pwned=1"><b>bold</b> & <script>alert(1)</script>'


@dataclass
class Run:
    client: Client
    worker: Any
    store: SqliteStore
    history: dict


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def run(tmp_path_factory) -> AsyncIterator[Run]:
    folder: Path = tmp_path_factory.mktemp("history")
    async with DevHub([HubSpec(name="events", partitions=2)]) as hub:
        settings = replace(
            Settings(),
            eventhub_connection_string=hub.connection_string("events"),
            store_url=f"sqlite:///{folder}/projection.sqlite",
            checkpoint_url=f"sqlite:///{folder}/checkpoints.sqlite",
            reorder_window=0.2,
            load_balancing_interval=1,
            checkpoint_every_seconds=0.5,
        )
        messages = list(deliver(lifecycle(300, seed=31), seed=32)) + [Message(MARKUP, {}, "x", {})]
        async with producer_client(settings) as producer:
            published = await publish(producer, messages)
        store = SqliteStore(settings.store_url)
        await store.open()
        stop = asyncio.Event()
        workers: list = []
        options = WorkerOptions(store=store, on_started=workers.append, history_interval=0.5)
        task = asyncio.create_task(run_worker(settings, stop, options))
        try:
            await until(lambda: workers or task.done(), 30, "the worker to start")
            worker = workers[0]

            def caught_up_and_sampled() -> bool:
                points = worker.history.series()["points"]
                return (
                    task.done()
                    or worker.tally.read >= published
                    and len(worker.buffer) == 0
                    and len(points) >= 4
                    and sum(p["rate"]["read"] for p in points) > 0
                    and all(p["rate"]["read"] == 0 for p in points[-2:])  # sampled after everything was read
                )

            await until(caught_up_and_sampled, 60, "the worker to read everything and sample it")
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)
        try:
            async with serving(settings, store, worker) as client:
                history = await client.json("/api/history")
                yield Run(client, worker, store, history)
        finally:
            await store.close()


def floats(value: str) -> float:
    return float(value) if value != "" else float("nan")


async def test_the_charts_draw_the_workers_samples(run: Run, tmp_path):
    points = run.history["points"]
    assert run.history["interval"] == 0.5 and len(points) >= 4
    assert sum(p["rate"]["read"] for p in points) * 0.5 == pytest.approx(run.worker.tally.read, rel=0.3)
    page = Elements(await render(run.client.url + "/", tmp_path / "profile"))
    assert next(el for el in page.found if el["tag"] == "body")["data-loaded"] == "true", page.by_id("error")["text"]

    charts = {el["id"]: el for el in page.found if el.get("id", "").startswith("chart-")}
    svgs = [el for el in page.found if el["tag"] == "svg" and el.get("class") == "chart"]
    assert len(svgs) == 3 and all(el["data-points"] == str(len(points)) for el in svgs), svgs
    paths = {el["data-series"]: el for el in page.found if el["tag"] == "path" and "data-series" in el}

    for name in ("read", "applied", "stale", "dead_lettered"):
        path = paths[name]
        assert path["data-points"] == str(len(points)), (name, path)
        assert floats(path["data-last"]) == points[-1]["rate"][name]
    peak = max(p["rate"]["read"] for p in points)
    assert peak > 0 and float(svgs[0]["data-max"]) >= peak

    for pid in ("0", "1"):
        path = paths[f"partition {pid}"]
        assert path["data-points"] == str(sum(1 for p in points if pid in p["lag"] and p["lag"][pid] is not None))
        assert floats(path["data-last"]) == points[-1]["lag"][pid] == 0  # caught up, checkpointed

    committed = [p for p in points if p["latency"]["count"]]
    assert committed, points
    assert paths["p99"]["data-points"] == str(len(committed))
    assert floats(paths["p99"]["data-last"]) == committed[-1]["latency"]["p99"]
    assert all(0 < p["latency"]["p50"] <= p["latency"]["p99"] for p in committed)

    # Every vertex inside the 640 x 180 drawing.
    for path in paths.values():
        coords = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", path["d"])]
        assert coords and all(0 <= v <= 640 for v in coords[0::2]) and all(0 <= v <= 180 for v in coords[1::2])
    assert set(charts) == {"chart-rate", "chart-lag", "chart-latency"}


async def test_search_finds_an_object_and_its_link_shows_the_full_state(run: Run, tmp_path):
    failed = await run.client.json("/api/objects?state.status=Failed&limit=1")
    assert failed["objects"], "the simulated traffic has failed runs"
    target = failed["objects"][0]
    prefix = target["object"].split("/")[0] + "/"
    query = {"prefix": prefix, "type": target["event_type"], "limit": 50}
    unfiltered = await run.client.json("/api/objects?" + urlencode(query))
    assert any(o["state"].get("status") != "Failed" for o in unfiltered["objects"])  # so the status filter counts
    expected = await run.client.json("/api/objects?" + urlencode({**query, "state.status": "Failed"}))
    fragment = urlencode({"prefix": prefix, "type": target["event_type"], "status": "Failed"})
    page = Elements(await render(f"{run.client.url}/#search&{fragment}", tmp_path / "profile"))
    assert page.by_id("results").get("hidden") is None and page.by_id("explore-error").get("hidden") == ""
    found = page.having("data-found")
    assert [el["data-found"] for el in found] == [o["object"] for o in expected["objects"]]
    assert target["object"] in [el["data-found"] for el in found]
    assert page.by_id("search-prefix")["value"] == prefix  # the form shows what was searched
    link = next(el for el in page.found if el["tag"] == "a" and el.get("title") == target["object"])

    detail = Elements(await render(run.client.url + "/" + link["href"], tmp_path / "profile2"))
    state = detail.by_id("detail-state")
    assert detail.by_id("detail").get("hidden") is None
    assert state["data-object"] == target["object"]
    assert json.loads(state["text"]) == await run.client.json(
        "/api/objects/" + target["object"] + "?" + urlencode({"source": target["source"]})
    )


async def test_a_dead_letter_body_with_markup_shows_as_text_with_its_reason(run: Run, tmp_path):
    (letter,) = (await run.client.json("/api/deadletters"))["dead_letters"]
    assert letter["body"] == MARKUP.decode()
    front = Elements(await render(run.client.url + "/", tmp_path / "profile"))
    link = next(el for el in front.found if el["tag"] == "a" and el.get("href") == f"#deadletter={letter['id']}")

    page = Elements(await render(run.client.url + "/" + link["href"], tmp_path / "profile2"))
    assert page.by_id("letter").get("hidden") is None
    assert page.by_id("letter-body")["text"] == MARKUP.decode()
    assert page.by_id("letter-reason")["text"] == letter["reason"] and "JSON" in letter["reason"]
    assert not [el for el in page.found if el["tag"] in ("img", "b")]  # the markup made no element
    assert all(el.get("src", "").startswith("/static/") for el in page.found if el["tag"] == "script")
    body = next(el for el in page.found if el["tag"] == "body")
    assert "data-pwned" not in body
