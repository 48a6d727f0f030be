"""docs/deploy.md stays consistent with the artefacts it describes."""

from __future__ import annotations

import pytest
from deploykit import DEPLOY_DOC, env_dict, find_one


@pytest.fixture(scope="module")
def doc() -> str:
    assert DEPLOY_DOC.is_file(), "docs/deploy.md is missing"
    return DEPLOY_DOC.read_text(encoding="utf-8")


def test_doc_names_every_compose_service_and_host_port(doc, compose):
    for name, svc in compose["services"].items():
        assert f"`{name}`" in doc, f"docs/deploy.md does not mention compose service {name}"
        for port in svc.get("ports", []):
            host = str(port).split(":")[0]
            assert host in doc, f"docs/deploy.md does not mention host port {host} ({name})"


def test_doc_is_honest_about_compose_being_unverified(doc):
    assert "Not verified here" in doc


def test_doc_covers_apply_roles_replay_and_scaling(doc, resources):
    for needle in (
        "kubectl apply -k deploy/",
        "Azure Event Hubs Data Receiver",
        "Storage Blob Data Contributor",
        "Storage Blob Data Reader",
        "processor replay --from earliest",
        "checkpointStrategy: blobMetadata",
        "last enqueued sequence number",
    ):
        assert needle in doc, f"docs/deploy.md lacks {needle!r}"
    so = find_one(resources, "ScaledObject")["spec"]
    assert f"[{so['minReplicaCount']}, {so['maxReplicaCount']}]" in doc
    cfg = find_one(resources, "ConfigMap")["data"]
    assert f"PROCESSOR_LOAD_BALANCING_INTERVAL={cfg['PROCESSOR_LOAD_BALANCING_INTERVAL']}" in doc
    assert f"PROCESSOR_OWNERSHIP_EXPIRATION={cfg['PROCESSOR_OWNERSHIP_EXPIRATION']}" in doc


def test_doc_store_url_matches_compose(doc, compose):
    url = env_dict(compose["services"]["worker-1"]["environment"])["PROCESSOR_STORE_URL"]
    assert url in doc
