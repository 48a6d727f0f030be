"""The environment shipped in compose and the ConfigMap is accepted by the
worker's own settings loader (processor.config), and agrees with its defaults."""

from __future__ import annotations

from typing import Any

import pytest
from deploykit import (
    CONTRACT_CONSUMER_GROUP,
    CONTRACT_HTTP_PORT,
    CONTRACT_HUB,
    CONTRACT_PARTITIONS,
    env_dict,
    find_one,
    require,
)


def _load(env: dict[str, str], tmp_path, monkeypatch) -> Any:
    config = require("processor.config")
    # Keep a developer's config/processor.toml out of the picture.
    monkeypatch.chdir(tmp_path)
    try:
        return config.load_settings(env=env)
    except config.ConfigError as exc:
        pytest.fail(f"the worker rejects this environment: {exc}")


@pytest.fixture(scope="module")
def defaults() -> Any:
    return require("processor.config").Settings()


def test_every_shipped_variable_is_a_known_setting(compose, resources, manifests):
    known = set(require("processor.config").env_names()) | {"TMPDIR"}
    shipped: set[str] = set(find_one(resources, "ConfigMap")["data"])
    (secret,) = manifests["secret.example.yaml"]
    shipped |= set(secret["stringData"])
    for svc in compose["services"].values():
        shipped |= {k for k in env_dict(svc.get("environment")) if k.startswith("PROCESSOR_")}
    container = find_one(resources, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    shipped |= {e["name"] for e in container.get("env", [])}
    unknown = sorted(shipped - known)
    assert not unknown, f"variables the worker does not read: {unknown}"


def test_compose_worker_environment_loads(compose, tmp_path, monkeypatch, defaults):
    env = env_dict(compose["services"]["worker-1"]["environment"])
    settings = _load(env, tmp_path, monkeypatch)
    assert settings.checkpoint_kind() == "blob"
    assert settings.store_url.startswith("postgresql://")
    assert settings.eventhub_connection_string and not settings.eventhub_namespace
    grace = int(compose["services"]["worker-1"]["stop_grace_period"].rstrip("s"))
    assert settings.shutdown_timeout < grace
    assert settings.http_address.endswith(f":{CONTRACT_HTTP_PORT}")


def test_aks_environment_loads(resources, manifests, tmp_path, monkeypatch):
    env = dict(find_one(resources, "ConfigMap")["data"])
    (secret,) = manifests["secret.example.yaml"]
    env.update(secret["stringData"])
    settings = _load(env, tmp_path, monkeypatch)
    assert settings.checkpoint_kind() == "blob"
    assert settings.checkpoint_account_url and not settings.checkpoint_connection_string
    assert settings.eventhub_namespace and not settings.eventhub_connection_string
    pod = find_one(resources, "Deployment")["spec"]["template"]["spec"]
    assert settings.shutdown_timeout < pod["terminationGracePeriodSeconds"]
    assert settings.ownership_expiration > settings.load_balancing_interval


def test_worker_defaults_match_the_contract(defaults):
    assert defaults.eventhub_name == CONTRACT_HUB
    assert defaults.consumer_group == CONTRACT_CONSUMER_GROUP
    assert defaults.http_address.endswith(f":{CONTRACT_HTTP_PORT}")


def test_emulator_config_serves_the_worker_defaults(hub_entity, defaults, resources):
    """Config.json declares the hub the worker uses by default; its consumer
    group `$Default` always exists in the emulator (declaring it is an error)."""
    assert hub_entity["Name"] == defaults.eventhub_name
    declared = {g["Name"].lower() for g in hub_entity.get("ConsumerGroups", [])}
    assert defaults.consumer_group.lower() == "$default" or defaults.consumer_group.lower() in declared
    assert int(hub_entity["PartitionCount"]) == CONTRACT_PARTITIONS
    so = find_one(resources, "ScaledObject")
    assert so["spec"]["triggers"][0]["metadata"]["blobContainer"] == defaults.checkpoint_container
