"""An object's history over HTTP (/api/objects/{object}/events) and from `processor history`, over a real SQLite
store the real projector wrote with history on."""

from __future__ import annotations

from dataclasses import replace

import orjson

from processor.config import Settings
from processor.stores.history import HistoryRetention
from tests.http.helpers import serving
from tests.stores.test_contract import insert, row
from tests.stores.test_history_contract import apply, run
from tests.test_cli import run as run_cli


async def filled(store) -> tuple[str, str]:
    store.history = HistoryRetention(per_object=10, max_age=0)
    queued, running = run("Queued", 1, 10, id="q"), run("Running", 2, 11, id="r")
    await apply(store, running, queued)
    await apply(store, run("Starting", 1, 12, id="s"))
    return queued.key


async def test_the_events_that_made_an_object_newest_first_and_an_object_named_events_is_still_itself(
    sqlite_store,
):
    source, name = await filled(sqlite_store)
    async with serving(replace(Settings(), history_per_object=10), sqlite_store) as client:
        body = await client.json(f"/api/objects/{name}/events")
        assert (body["object"], body["source"], body["enabled"], body["limit"]) == (name, source, True, 100)
        assert [(e["event_id"], e["outcome"], e["partition"], e["sequence_number"]) for e in body["events"]] == [
            ("s", "stale", "1", 12),
            ("r", "applied", "1", 11),
            ("q", "applied", "1", 10),
        ]
        assert len((await client.json(f"/api/objects/{name}/events?limit=1"))["events"]) == 1
        assert (await client.json(f"/api/objects/{name}/events?source={source}"))["events"][0]["event_id"] == "s"
        assert (await client.json(f"/api/objects/{name}"))["object"] == name
        for path, expected in [
            ("/api/objects/runs/nothing/events", 404),
            (f"/api/objects/{name}/events/events", 404),  # no object named .../events
            (f"/api/objects/{name}/events?x=1", 400),
        ]:
            status, _, _ = await client.get(path)
            assert status == expected, path
        # An object whose own name ends in /events is itself at its address (the route would otherwise hide it).
        await sqlite_store.commit([insert(row(name + "/events", source=source, state={"mine": True}))], [])
        assert (await client.json(f"/api/objects/{name}/events"))["state"] == {"mine": True}
        assert (await client.json(f"/api/objects/{name}/events/events"))["events"] == []


async def test_processor_history_prints_them_and_says_when_history_is_off(sqlite_store, tmp_path):
    _, name = await filled(sqlite_store)
    done = run_cli("history", name, "--json", "--store", sqlite_store.url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [orjson.loads(line)["event_id"] for line in done.stdout.splitlines()] == ["s", "r", "q"]
    await sqlite_store.commit([insert(row("runs/plain"))], [])
    plain = run_cli("history", "runs/plain", "--store", sqlite_store.url, cwd=tmp_path)
    assert plain.returncode == 0 and b"PROCESSOR_HISTORY_PER_OBJECT" in plain.stderr
    missing = run_cli("history", "runs/none", "--store", sqlite_store.url, cwd=tmp_path)
    assert missing.returncode == 1 and b"no object" in missing.stderr
