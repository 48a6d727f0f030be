"""docker-compose.yml and the Event Hubs emulator Config.json, validated offline."""

from __future__ import annotations

import copy
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from deploykit import (
    COMPOSE_FILE,
    CONTRACT_CONSUMER_GROUP,
    CONTRACT_DEFAULT_SHUTDOWN_TIMEOUT,
    CONTRACT_HTTP_PORT,
    CONTRACT_HUB,
    CONTRACT_PARTITIONS,
    CONTRACT_REPLAY_GROUP,
    EMULATOR_CONFIG,
    REPO,
    BareVariableError,
    compose_interpolate,
    env_dict,
    parse_connection_string,
    require,
)

EMULATOR_IMAGE = "mcr.microsoft.com/azure-messaging/eventhubs-emulator:latest"
EMULATOR_CONFIG_TARGET = "/Eventhubs_Emulator/ConfigFiles/Config.json"


# --- schema validation ----------------------------------------------------------


def compose_validator():
    jsonschema = require("jsonschema")
    builtin = require("check_jsonschema.builtin_schemas")
    schema = builtin.get_builtin_schema("vendor.compose-spec")
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def compose_errors(document: dict[str, Any]) -> list[str]:
    validator = compose_validator()
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
        for e in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    ]


def test_compose_matches_compose_specification_schema(compose_raw):
    errors = compose_errors(compose_raw)
    assert not errors, "docker-compose.yml violates the Compose Specification:\n" + "\n".join(errors)


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda d: d["services"]["postgres"].__setitem__("healthchek", {}), id="unknown-service-key"),
        pytest.param(lambda d: d["services"]["worker-1"].__setitem__("ports", "8081:8080"), id="ports-not-a-list"),
        pytest.param(
            lambda d: d["services"]["worker-1"]["depends_on"]["postgres"].__setitem__("condition", "healthy"),
            id="bad-depends-on-condition",
        ),
    ],
)
def test_compose_schema_rejects_broken_variants(compose_raw, mutate):
    """The schema check is real: plausible mistakes are reported."""
    broken = copy.deepcopy(compose_raw)
    mutate(broken)
    assert compose_errors(broken), "a broken compose document passed schema validation"


def test_compose_interpolation_has_no_bare_variables(compose_raw):
    # `$Default` unescaped would be substituted by an (empty) variable.
    try:
        compose_interpolate(compose_raw)
    except BareVariableError as exc:
        pytest.fail(str(exc))
    with pytest.raises(BareVariableError):
        compose_interpolate({"x": "group $Default"})


# --- services -------------------------------------------------------------------


def workers(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {
        name: svc
        for name, svc in compose["services"].items()
        if svc.get("command") in (["run"], "run") and not svc.get("profiles")
    }
    assert found, "no service runs `processor run`"
    return found


def test_emulator_service_follows_documented_setup(compose):
    services = compose["services"]
    emulators = [n for n, s in services.items() if s.get("image") == EMULATOR_IMAGE]
    assert len(emulators) == 1, f"expected one {EMULATOR_IMAGE} service, found {emulators}"
    emu = services[emulators[0]]
    env = env_dict(emu.get("environment"))
    assert env.get("ACCEPT_EULA") == "Y"
    for key in ("BLOB_SERVER", "METADATA_SERVER"):
        host = env.get(key, "").split(":")[0]
        assert host in services, f"{key}={env.get(key)!r} is not a compose service"
        assert "azurite" in services[host]["image"], f"{key} must point at Azurite"
        assert host in emu.get("depends_on", {}), f"emulator must depend on {host}"
    mounts = [v for v in emu.get("volumes", []) if isinstance(v, str)]
    config_mounts = [m for m in mounts if m.split(":")[1] == EMULATOR_CONFIG_TARGET]
    assert config_mounts, f"Config.json must be mounted at {EMULATOR_CONFIG_TARGET}"
    source = (REPO / config_mounts[0].split(":")[0]).resolve()
    assert source == EMULATOR_CONFIG.resolve(), f"mounted {source}, expected {EMULATOR_CONFIG}"
    published = {str(p).split(":")[-1] for p in emu.get("ports", [])}
    assert "5672" in published, "AMQP port 5672 must be published"


def test_postgres_16_with_healthcheck(compose):
    pg = compose["services"]["postgres"]
    assert re.fullmatch(r"postgres:16(\.\d+)?(-[\w.]+)?", pg["image"]), pg["image"]
    test = pg["healthcheck"]["test"]
    assert "pg_isready" in " ".join(test if isinstance(test, list) else [test])


def test_at_least_two_workers(compose):
    found = workers(compose)
    total = sum(int(s.get("deploy", {}).get("replicas", 1)) for s in found.values())
    assert total >= 2, f"need two workers sharing the partitions, have {total}"


def test_worker_environment_points_at_the_stack(compose, hub_entity):
    services = compose["services"]
    for name, svc in workers(compose).items():
        env = env_dict(svc["environment"])

        eh = parse_connection_string(env["PROCESSOR_EVENTHUB_CONNECTION_STRING"])
        assert eh.get("usedevelopmentemulator") == "true", f"{name}: emulator flag missing"
        eh_host = urlsplit(eh["endpoint"]).hostname
        assert eh_host in services and services[eh_host].get("image") == EMULATOR_IMAGE, (
            f"{name}: Event Hubs endpoint {eh_host!r} is not the emulator service"
        )
        assert env["PROCESSOR_EVENTHUB_NAME"] == hub_entity["Name"] == CONTRACT_HUB
        assert env["PROCESSOR_CONSUMER_GROUP"] == CONTRACT_CONSUMER_GROUP

        store = urlsplit(env["PROCESSOR_STORE_URL"])
        assert store.scheme == "postgresql"
        pg_env = env_dict(services[store.hostname]["environment"])
        assert services[store.hostname]["image"].startswith("postgres:16")
        assert (store.username, store.password, store.path.lstrip("/"), store.port) == (
            pg_env["POSTGRES_USER"],
            pg_env["POSTGRES_PASSWORD"],
            pg_env["POSTGRES_DB"],
            5432,
        ), f"{name}: store URL does not match the postgres service"
        assert svc["depends_on"][store.hostname]["condition"] == "service_healthy"

        blob = parse_connection_string(env["PROCESSOR_CHECKPOINT_CONNECTION_STRING"])
        blob_host = urlsplit(blob["blobendpoint"]).hostname
        assert "azurite" in services[blob_host]["image"], f"{name}: checkpoints must live on Azurite"
        assert env["PROCESSOR_CHECKPOINT_CONTAINER"]

        assert env.get("PROCESSOR_HTTP_ADDRESS", f"0.0.0.0:{CONTRACT_HTTP_PORT}").endswith(f":{CONTRACT_HTTP_PORT}")


def test_checkpoint_container_is_created_before_workers_start(compose):
    services = compose["services"]
    for name, svc in workers(compose).items():
        container = env_dict(svc["environment"])["PROCESSOR_CHECKPOINT_CONTAINER"]
        creators = [
            dep for dep, cond in svc["depends_on"].items() if cond.get("condition") == "service_completed_successfully"
        ]
        assert creators, f"{name}: nothing creates the checkpoint container first"
        command = services[creators[0]]["command"]
        assert command[:4] == ["az", "storage", "container", "create"]
        assert command[command.index("--name") + 1] == container


def test_worker_stop_grace_exceeds_shutdown_timeout(compose):
    for name, svc in workers(compose).items():
        env = env_dict(svc["environment"])
        timeout = float(env.get("PROCESSOR_SHUTDOWN_TIMEOUT", CONTRACT_DEFAULT_SHUTDOWN_TIMEOUT))
        grace = svc.get("stop_grace_period", "10s")
        match = re.fullmatch(r"(\d+)s", str(grace))
        assert match, f"{name}: use whole seconds for stop_grace_period, got {grace!r}"
        assert int(match.group(1)) > timeout, f"{name}: stop_grace_period {grace} <= shutdown timeout {timeout}s"
        assert svc.get("stop_signal", "SIGTERM") == "SIGTERM"


def test_worker_http_ports_and_healthcheck(compose):
    host_ports: list[str] = []
    for name, svc in workers(compose).items():
        targets = {str(p).split(":")[-1] for p in svc["ports"]}
        assert str(CONTRACT_HTTP_PORT) in targets, f"{name}: container port {CONTRACT_HTTP_PORT} not published"
        host_ports += [str(p).split(":")[0] for p in svc["ports"]]
        probe = " ".join(svc["healthcheck"]["test"])
        assert f":{CONTRACT_HTTP_PORT}/healthz" in probe
    assert len(host_ports) == len(set(host_ports)), f"host ports collide: {host_ports}"


def test_simulator_is_optional_profile(compose):
    sims = {n: s for n, s in compose["services"].items() if s.get("command") in (["simulate"], "simulate")}
    assert len(sims) == 1, "expected one `processor simulate` service"
    (sim,) = sims.values()
    assert sim.get("profiles") == ["simulate"]
    env = env_dict(sim["environment"])
    assert parse_connection_string(env["PROCESSOR_EVENTHUB_CONNECTION_STRING"]).get("usedevelopmentemulator") == "true"
    assert env["PROCESSOR_EVENTHUB_NAME"] == CONTRACT_HUB


def test_compose_file_is_the_top_level_one():
    assert COMPOSE_FILE.parent == REPO


# --- emulator Config.json -------------------------------------------------------

# Constraints the emulator enforces on Config.json (from its published
# Config-schema.json): one namespace named emulatorNs1, PartitionCount as a
# string, and `$Default` is implicit (declaring it is rejected).
EMULATOR_SCHEMA = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "required": ["UserConfig"],
    "properties": {
        "UserConfig": {
            "type": "object",
            "required": ["NamespaceConfig", "LoggingConfig"],
            "properties": {
                "NamespaceConfig": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["Type", "Name", "Entities"],
                        "properties": {
                            "Type": {"enum": ["EventHub"]},
                            "Name": {"enum": ["emulatorNs1"]},
                            "Entities": {
                                "type": "array",
                                "minItems": 1,
                                "maxItems": 10,
                                "items": {
                                    "type": "object",
                                    "required": ["Name", "PartitionCount"],
                                    "properties": {
                                        "Name": {"type": "string", "minLength": 1},
                                        "PartitionCount": {"type": "string", "pattern": "^[1-9][0-9]*$"},
                                        "ConsumerGroups": {
                                            "type": "array",
                                            "maxItems": 20,
                                            "items": {
                                                "type": "object",
                                                "required": ["Name"],
                                                "properties": {
                                                    "Name": {
                                                        "type": "string",
                                                        "not": {"pattern": "^\\$[Dd][Ee][Ff][Aa][Uu][Ll][Tt]$"},
                                                    }
                                                },
                                            },
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
                "LoggingConfig": {
                    "type": "object",
                    "required": ["Type"],
                    "properties": {"Type": {"enum": ["File", "Console", "File,Console", "Console,File"]}},
                },
            },
        }
    },
}


def emulator_config_errors(document: dict[str, Any]) -> list[str]:
    jsonschema = require("jsonschema")
    validator = jsonschema.Draft7Validator(EMULATOR_SCHEMA)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]


def test_emulator_config_is_valid(emulator_config):
    errors = emulator_config_errors(emulator_config)
    assert not errors, "Config.json violates the emulator's constraints:\n" + "\n".join(errors)


def test_emulator_config_schema_rejects_declared_default_group(emulator_config):
    broken = copy.deepcopy(emulator_config)
    broken["UserConfig"]["NamespaceConfig"][0]["Entities"][0]["ConsumerGroups"].append({"Name": "$Default"})
    assert emulator_config_errors(broken)


def test_emulator_declares_what_the_worker_defaults_expect(hub_entity):
    """Hub `events`, 4 partitions; `$Default` (implicit in the emulator) + `replay`."""
    assert hub_entity["Name"] == CONTRACT_HUB
    assert int(hub_entity["PartitionCount"]) == CONTRACT_PARTITIONS
    declared = {g["Name"] for g in hub_entity.get("ConsumerGroups", [])}
    available = declared | {CONTRACT_CONSUMER_GROUP}  # the emulator always creates $Default
    assert {CONTRACT_CONSUMER_GROUP, CONTRACT_REPLAY_GROUP} <= available
    assert CONTRACT_REPLAY_GROUP in declared
