"""Hostile requests get a 4xx with a reason and leak nothing (found in review)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from processor.config import ConfigError, Settings, load_settings
from processor.ingest import ingest
from processor.stores.sqlite import SqliteStore
from tests.builders import STORAGE, blob_event, body, model_event
from tests.http.helpers import serving, until


async def test_odd_numbers_and_field_names_are_400_not_500(filled_store):
    async with serving(Settings(), filled_store) as client:
        for path in (
            "/api/objects?limit=%C2%B2",
            "/api/objects?limit=" + "9" * 5000,
            "/api/deadletters?after=%C2%B2",
            "/api/deadletters?after=99999999999999999999999",
            "/api/objects?state.status%0A=x",
        ):
            status, data, _ = await client.get(path)
            assert status == 400 and "error" in data, (path, status, data)


async def test_an_authorization_header_that_is_not_utf8_is_401(filled_store):
    settings = replace(Settings(), api_token="s3cret")
    async with serving(settings, filled_store) as client:
        host, port = client.url.split("//")[1].split(":")
        reader, writer = await asyncio.open_connection(host, int(port.rstrip("/")))
        writer.write(
            b"GET /api/objects HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Authorization: Bearer \xe4\xff\r\nConnection: close\r\n\r\n"
        )
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


async def test_api_and_dashboard_answer_only_their_own_host_names_and_probes_answer_any(filled_store):
    # A DNS-rebinding page reaches the server under the attacker's name: the Host header carries that name.
    settings = replace(Settings(), http_allowed_hosts=("processor.example.com",))
    async with serving(settings, filled_store) as client:
        port = client.handle.port
        for host in (
            "evil.example",
            f"evil.example:{port}",
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            f"processor.example.com.evil.example:{port}",
        ):
            for path in ("/api/objects", "/api/summary", "/api/nothing-here", "/", "/static/app.js"):
                status, data, _ = await client.get(path, headers={"Host": host})
                assert status == 421 and "PROCESSOR_HTTP_ALLOWED_HOSTS" in str(data), (host, path, status)
            # Kubelet probes and Prometheus scrapes name the pod IP or anything: they stay open.
            for path in ("/healthz", "/readyz", "/metrics"):
                assert (await client.get(path, headers={"Host": host}))[0] == 200, (host, path)
        for host in (
            "localhost",
            f"localhost:{port}",
            f"LOCALHOST:{port}",
            f"127.0.0.1:{port}",
            f"[::1]:{port}",
            "10.244.1.7:8080",
            "processor.example.com",
            f"Processor.Example.com.:{port}",
        ):
            for path in ("/api/objects", "/"):
                assert (await client.get(path, headers={"Host": host}))[0] == 200, (host, path)


async def test_a_star_in_the_allowed_hosts_answers_any_host_name(filled_store):
    async with serving(replace(Settings(), http_allowed_hosts=("*",)), filled_store) as client:
        assert (await client.get("/api/objects", headers={"Host": "anything.example"}))[0] == 200


def test_allowed_hosts_are_read_as_lowercase_names_and_a_url_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no config/processor.toml here: the environment alone
    env = {"PROCESSOR_HTTP_ALLOWED_HOSTS": " Processor.Example.com, processor.processor.svc ,"}
    assert load_settings(env=env).http_allowed_hosts == ("processor.example.com", "processor.processor.svc")
    for bad in ("http://processor.example.com", "processor.example.com:8080", "a b"):
        with pytest.raises(ConfigError, match="^PROCESSOR_HTTP_ALLOWED_HOSTS: "):
            load_settings(env={"PROCESSOR_HTTP_ALLOWED_HOSTS": bad})


def test_the_shipped_aks_config_allows_the_services_in_cluster_names(tmp_path, monkeypatch):
    import yaml

    from processor.http.hosts import HostRule

    deploy = Path(__file__).resolve().parents[2] / "deploy"
    service = yaml.safe_load((deploy / "service.yaml").read_text())["metadata"]
    data = yaml.safe_load((deploy / "configmap.yaml").read_text())["data"]
    monkeypatch.chdir(tmp_path)  # the ConfigMap alone, no config/processor.toml
    settings = load_settings(env=data)
    rule = HostRule(settings.http_allowed_hosts, "0.0.0.0")
    name, namespace = service["name"], service["namespace"]
    for host in (name, f"{name}.{namespace}", f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.cluster.local"):
        assert rule.allows(f"{host}:8080"), host


async def test_a_store_missing_a_table_is_not_ready_and_its_error_text_stays_in_the_log(tmp_path, caplog):
    store = SqliteStore(f"sqlite:///{tmp_path}/p.sqlite")
    await store.open()
    try:
        await ingest([("m", body(model_event("x", 1)))], Settings(), store)
        async with serving(Settings(), store) as client:
            assert await client.json("/readyz") == {"ready": True}
            assert (await client.json("/api/summary"))["store"]["up"] is True
            with sqlite3.connect(tmp_path / "p.sqlite") as db:
                db.execute("DROP TABLE projection")

            status, data, _ = await client.get("/readyz")
            assert status == 503 and data == {"ready": False, "reason": "store: unavailable"}

            async def summary_sees_it():
                return (await client.json("/api/summary"))["store"]["up"] is False

            await until(summary_sees_it, timeout=10, what="/api/summary once the cached counts expire")
            answers = [await client.get(path) for path in ("/api/summary", "/api/recent", "/api/objects", "/readyz")]
            assert answers[0][1]["objects"] is None and answers[0][1]["store"] == {"url_scheme": "sqlite", "up": False}
            assert [status for status, _, _ in answers[1:]] == [503, 503, 503]
            for _, data, _ in answers:
                assert "no such table" not in str(data) and "p.sqlite" not in str(data), data
        assert "no such table" in caplog.text  # the operator still learns why
    finally:
        await store.close()


async def status_of(client, request: bytes) -> bytes:
    """The status code a raw request gets."""
    reader, writer = await asyncio.open_connection("127.0.0.1", client.handle.port)
    try:
        writer.write(request)
        await writer.drain()
        return (await asyncio.wait_for(reader.readline(), 30)).split()[1]
    finally:
        writer.close()


async def test_an_over_long_request_line_is_a_400_and_one_warning_line_not_an_error_traceback(filled_store, caplog):
    caplog.set_level(logging.INFO)
    async with serving(Settings(), filled_store) as client:
        for _ in range(3):
            request = b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
            assert await status_of(client, request) == b"400"
        assert (
            await status_of(client, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n") == b"200"
        )
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert [r.levelname for r in loud] == ["WARNING"] * 3, [(r.levelname, r.getMessage()[:200]) for r in loud]
    for record in loud:
        text = record.getMessage()
        assert record.exc_info is None and "\n" not in text and len(text) < 400 and "127.0.0.1" in text, text
