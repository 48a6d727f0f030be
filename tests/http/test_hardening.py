"""Hostile requests get a 4xx with a reason and leak nothing (found in review)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from processor.config import Settings
from processor.ingest import ingest
from processor.stores.sqlite import SqliteStore
from tests.builders import STORAGE, body, blob_event, model_event
from tests.http.helpers import serving


async def test_odd_numbers_and_field_names_are_400_not_500(filled_store):
    async with serving(Settings(), filled_store) as client:
        for path in ("/api/objects?limit=%C2%B2", "/api/objects?limit=" + "9" * 5000, "/api/deadletters?after=%C2%B2",
                     "/api/deadletters?after=99999999999999999999999", "/api/objects?state.status%0A=x"):
            status, data, _ = await client.get(path)
            assert status == 400 and "error" in data, (path, status, data)


async def test_an_authorization_header_that_is_not_utf8_is_401(filled_store):
    settings = replace(Settings(), api_token="s3cret")
    async with serving(settings, filled_store) as client:
        host, port = client.url.split("//")[1].split(":")
        reader, writer = await asyncio.open_connection(host, int(port.rstrip("/")))
        writer.write(b"GET /api/objects HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xe4\xff\r\nConnection: close\r\n\r\n")
        await writer.drain()
        status_line = await reader.readline()
        writer.close()
        assert status_line.split()[1] == b"401"


async def test_an_unavailable_store_is_reported_without_its_path(filled_store):
    async with serving(Settings(), filled_store) as client:
        await filled_store.close()
        for path in ("/readyz", "/api/objects"):
            status, data, _ = await client.get(path)
            assert status == 503
            assert "sqlite" not in str(data) and "/" not in str(data.get("reason", data.get("error"))), data


async def test_one_object_is_found_by_exact_name_however_many_others_share_its_prefix(tmp_path):
    store = SqliteStore(f"sqlite:///{tmp_path}/p.sqlite")
    await store.open()
    try:
        # Over a thousand objects of another source start with the name asked for.
        lines = [(f"l{i}", body(blob_event(f"x{i:05d}", f"{i:032X}", etag=f"e{i}"))) for i in range(1100)]
        lines.append(("m", body(model_event("x", 1))))
        await ingest(lines, Settings(), store)
        async with serving(Settings(), store) as client:
            status, data, _ = await client.get("/api/objects/models/x")
            assert status == 200 and data["object"] == "models/x"
            status, _, _ = await client.get("/api/objects/models/nope")
            assert status == 404
            name = "/blobServices/default/containers/c/blobs/x00042"
            status, data, _ = await client.get(f"/api/objects/{name}?source={STORAGE}")
            assert status == 200 and data["object"] == name
    finally:
        await store.close()
