"""The JSON API, probes, token and method rules over a real SQLite store, through a real HTTP client."""

from __future__ import annotations

import urllib.parse
from dataclasses import replace

import pytest

from processor.config import Settings
from tests.builders import STORAGE
from tests.http.helpers import ODD_BLOB, parse_metrics, serving, until


async def page_through(client, query: str, limit: int) -> tuple[list[dict], int]:
    """Every object a filtered listing returns, following `next`; and how many pages it took."""
    objects, pages, cursor = [], 0, None
    while True:
        params = query + f"&limit={limit}" + (f"&next={cursor}" if cursor else "")
        page = await client.json(f"/api/objects?{params}")
        pages += 1
        assert len(page["objects"]) <= limit
        objects += page["objects"]
        cursor = page["next"]
        if cursor is None:
            return objects, pages
        assert page["objects"], "a page with a next cursor is never empty"


def keys(objects) -> list[tuple[str, str]]:
    return [(o["source"], o["object"]) for o in objects]


async def test_listing_pages_through_everything_in_key_order(filled_store, all_rows):
    async with serving(Settings(), filled_store) as client:
        first = await client.json("/api/objects")
        assert first["limit"] == 100 and len(first["objects"]) == 100 and first["next"]
        assert first["objects"][0] == all_rows[0].to_json()

        objects, pages = await page_through(client, "", limit=37)
        assert keys(objects) == [r.key for r in all_rows]  # complete, no repeats, sorted
        assert pages == -(-len(all_rows) // 37)  # the last page says next = null, no empty trailing page

        capped = await client.json("/api/objects?limit=5000")
        assert capped["limit"] == 1000


@pytest.mark.parametrize(
    "query, keep",
    [
        ("source={ws0}", lambda r: r.source == WS0.lower()),
        ("source={ws0_upper}", lambda r: r.source == WS0.lower()),  # sources compare case-insensitively
        ("prefix=runs/", lambda r: r.object.startswith("runs/")),
        (
            "type=Microsoft.MachineLearningServices.ModelRegistered",
            lambda r: r.event_type == "Microsoft.MachineLearningServices.ModelRegistered",
        ),
        ("state.status=Failed", lambda r: r.state.get("status") == "Failed"),
        (
            "state.status=Completed&source={ws0}&prefix=runs/",
            lambda r: r.state.get("status") == "Completed" and r.source == WS0.lower() and r.object.startswith("runs/"),
        ),
    ],
)
async def test_filters_match_the_store(filled_store, all_rows, query, keep):
    query = query.format(ws0=urllib.parse.quote(WS0, safe=""), ws0_upper=urllib.parse.quote(WS0.upper(), safe=""))
    expected = [r.key for r in all_rows if keep(r)]
    assert expected, "the sample must exercise this filter"
    async with serving(Settings(), filled_store) as client:
        objects, _ = await page_through(client, query, limit=25)
    assert keys(objects) == expected


WS0 = (
    "/subscriptions/00000000-1111-2222-3333-444444444444/resourceGroups/ml-prod/providers/"
    "Microsoft.MachineLearningServices/workspaces/ws-0"
)


async def test_bad_listing_parameters_are_400_with_a_reason(filled_store):
    async with serving(Settings(), filled_store) as client:
        for query, needle in [
            ("limit=0", "limit"),
            ("limit=ten", "limit"),
            ("next=garbage!", "next"),
            ("next=WzFd", "next"),
            ("status=Failed", "unknown parameter"),
            ("state.a.b=1", "state filter"),
            ("state.st%22atus=x", "state filter"),
        ]:
            status, body, r = await client.get(f"/api/objects?{query}")
            assert status == 400 and needle in body["error"], (query, body)
            assert r.content_type == "application/json"


async def test_one_object_by_name_source_and_percent_encoding(filled_store, all_rows):
    async with serving(Settings(), filled_store) as client:
        run = next(r for r in all_rows if r.object.startswith("runs/"))
        assert await client.json(f"/api/objects/{run.object}") == run.to_json()

        # Blob subjects start with a slash and may hold any character: encoded as one segment, or with slashes.
        odd = next(r for r in all_rows if r.object.endswith(ODD_BLOB))
        assert odd.object.startswith("/blobServices/")
        for path in (urllib.parse.quote(odd.object, safe=""), urllib.parse.quote(odd.object, safe="/")):
            assert (await client.json(f"/api/objects/{path}"))["object"] == odd.object
        by_source = await client.json(
            f"/api/objects/{urllib.parse.quote(odd.object, safe='')}?source={urllib.parse.quote(STORAGE, safe='')}"
        )
        assert by_source["source"] == STORAGE.lower()

        status, body, r = await client.get("/api/objects/runs/does-not-exist")
        assert status == 404 and r.content_type == "application/json"
        assert body["object"] == "runs/does-not-exist" and "no object" in body["error"]
        status, body, _ = await client.get(f"/api/objects/{run.object}?source=/subscriptions/nope")
        assert status == 404

        # The same name under two sources: ambiguous without ?source=, exact with it.
        shared = next(r for r in all_rows if sum(o.object == r.object for o in all_rows) > 1)
        status, body, _ = await client.get(f"/api/objects/{shared.object}")
        assert status == 409 and sorted(body["sources"]) == sorted(
            o.source for o in all_rows if o.object == shared.object
        )
        picked = await client.json(f"/api/objects/{shared.object}?source={urllib.parse.quote(shared.source)}")
        assert picked == shared.to_json()


async def test_dead_letters_page_by_id_and_recent_is_newest_first(filled_store):
    expected = await filled_store.dead_letters(limit=1000)
    assert len(expected) >= 3
    async with serving(Settings(), filled_store) as client:
        seen, after = [], 0
        while True:
            page = await client.json(f"/api/deadletters?limit=2&after={after}")
            seen += page["dead_letters"]
            if page["next"] is None:
                break
            after = page["next"]
        assert seen == expected
        assert {"id", "reason", "origin", "body", "received_at", "truncated"} <= set(seen[0])
        status, body, _ = await client.get("/api/deadletters?after=-1")
        assert status == 400 and "after" in body["error"]
        newest = await client.json("/api/deadletters?order=newest&limit=2")
        assert newest["dead_letters"] == list(reversed(expected))[:2] and newest["next"] is None
        for bad in ("order=latest", "order=newest&after=3"):
            assert (await client.get(f"/api/deadletters?{bad}"))[0] == 400

        recent = await client.json("/api/recent?limit=5")
        assert [o["object"] for o in recent["objects"]] == [r.object for r in await filled_store.recent(5)]

        summary = await client.json("/api/summary")
        assert summary["objects"] == (await filled_store.counts())["objects"]
        assert summary["dead_letters"] == len(expected) and summary["worker"] is None
        assert await client.json("/api/partitions") == {"source": "none", "partitions": []}


async def test_token_guards_the_api_but_not_probes_metrics_or_the_page(filled_store):
    settings = replace(Settings(), api_token="s3cret-Token")
    async with serving(settings, filled_store) as client:
        for path in (
            "/api/objects",
            "/api/objects/runs/x",
            "/api/deadletters",
            "/api/summary",
            "/api/partitions",
            "/api/recent",
            "/api/nothing-here",
        ):
            status, body, r = await client.get(path, auth=False)
            assert status == 401 and r.headers["WWW-Authenticate"].startswith("Bearer"), path
            assert "token" in body["error"]
        for header in (
            "Bearer wrong",
            "Bearer s3cret-Token-and-more",
            "Basic s3cret-Token",
            "s3cret-Token",
            "Bearer s3cret-token",
        ):
            status, _, _ = await client.get("/api/objects", auth=False, headers={"Authorization": header})
            assert status == 401, header
        assert (await client.get("/api/objects"))[0] == 200  # Authorization: Bearer s3cret-Token
        for path in ("/healthz", "/readyz", "/metrics", "/", "/static/app.js"):
            assert (await client.get(path, auth=False))[0] == 200, path


async def test_nothing_writes_other_methods_are_405(filled_store):
    async with serving(Settings(), filled_store) as client:
        for method in ("POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            for path in ("/api/objects", "/api/objects/runs/x", "/api/deadletters", "/metrics", "/", "/readyz"):
                async with client.session.request(method, client.url + path) as r:
                    assert r.status == 405, (method, path)
                    assert r.headers["Allow"] == "GET, HEAD"
        async with client.session.head(client.url + "/api/objects") as r:
            assert r.status == 200
        status, body, _ = await client.get("/api/nope")
        assert status == 404 and "error" in body


async def test_readiness_follows_the_store_and_liveness_does_not(filled_store):
    async with serving(Settings(), filled_store) as client:
        assert await client.json("/readyz") == {"ready": True}
        metrics = parse_metrics((await client.get("/metrics"))[1])
        assert metrics["processor_store_up"].value() == 1
        assert metrics["processor_objects"].value() == (await filled_store.counts())["objects"]

        await filled_store.close()
        status, body, _ = await client.get("/readyz")
        assert status == 503 and body["ready"] is False and body["reason"].startswith("store")
        assert (await client.get("/healthz"))[0] == 200

        async def store_down() -> bool:
            return parse_metrics((await client.get("/metrics"))[1])["processor_store_up"].value() == 0

        await until(store_down, timeout=10, what="processor_store_up 0 once the cached counts expire")
        status, body, _ = await client.get("/api/objects")
        assert status == 503 and "store" in body["error"]
