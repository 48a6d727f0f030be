"""deploy/ manifests: Kubernetes schemas, KEDA CRD shapes and cross-references."""

from __future__ import annotations

import copy
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from deploykit import (
    CONTRACT_CONSUMER_GROUP,
    CONTRACT_DEFAULT_SHUTDOWN_TIMEOUT,
    CONTRACT_HTTP_PORT,
    CONTRACT_HUB,
    CONTRACT_LIVENESS_PATH,
    CONTRACT_METRICS_PATH,
    CONTRACT_READINESS_PATH,
    DEPLOY_DIR,
    env_dict,
    find_one,
    load_yaml_documents,
    require,
)

# AKS-supported minor versions to validate against (schemas bundled in
# kubernetes-validate; no network).
K8S_VERSIONS = ("1.33.0", "1.35.0")
CRD_KINDS = {("keda.sh/v1alpha1", "ScaledObject"), ("keda.sh/v1alpha1", "TriggerAuthentication")}
SECRET_EXAMPLE = "secret.example.yaml"
# resource.Quantity syntax (the JSON schemas only say "string or number").
QUANTITY = re.compile(r"(\d+(\.\d+)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\d+)?")


def _cpu_millis(value: str | int | float) -> float:
    text = str(value)
    return float(text[:-1]) if text.endswith("m") else float(text) * 1000


def _k8s_errors(resource: dict[str, Any], version: str) -> str | None:
    kv = require("kubernetes_validate.utils")
    try:
        kv.validate(resource, version, strict=True)
    except kv.ValidationError as exc:
        return f"{'.'.join(map(str, exc.path))}: {exc.message}"
    except kv.SchemaNotFoundError as exc:
        pytest.fail(
            f"no Kubernetes {version} schema for {resource.get('apiVersion')}/{resource.get('kind')}: {exc.message}"
        )
    except kv.VersionNotSupportedError as exc:
        pytest.fail(f"kubernetes-validate does not bundle Kubernetes {exc.version}; upgrade it")
    return None


def _all_k8s_files() -> list[str]:
    return sorted(p.name for p in DEPLOY_DIR.glob("*.yaml") if p.name != "kustomization.yaml")


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("filename", _all_k8s_files())
def test_manifest_matches_kubernetes_schema(filename, version):
    docs = load_yaml_documents(DEPLOY_DIR / filename)
    assert docs, f"{filename} is empty"
    for doc in docs:
        if (doc.get("apiVersion"), doc.get("kind")) in CRD_KINDS:
            continue  # validated against the KEDA schemas below
        error = _k8s_errors(doc, version)
        assert error is None, f"{filename} {doc['kind']}/{doc['metadata']['name']} invalid for k8s {version}: {error}"


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(
            lambda d: d["spec"]["template"]["spec"]["containers"][0]["ports"][0].__setitem__("containerPort", "http"),
            id="port-not-integer",
        ),
        pytest.param(
            lambda d: d["spec"]["template"]["spec"].__setitem__("terminationGracePeriod", 45), id="typo-field"
        ),
        pytest.param(lambda d: d["spec"].pop("selector"), id="missing-selector"),
    ],
)
def test_kubernetes_schema_rejects_broken_deployment(resources, mutate):
    broken = copy.deepcopy(find_one(resources, "Deployment"))
    mutate(broken)
    assert _k8s_errors(broken, K8S_VERSIONS[-1]) is not None, "broken Deployment passed validation"


# --- KEDA CRDs (minimal schemas written from the KEDA docs) ---------------------

_OBJECT_META = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}

SCALED_OBJECT_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "ScaledObject"},
        "metadata": _OBJECT_META,
        "spec": {
            "type": "object",
            "required": ["scaleTargetRef", "triggers"],
            "additionalProperties": False,
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "required": ["name"],
                    "additionalProperties": False,
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "name": {"type": "string"},
                        "envSourceContainerName": {"type": "string"},
                    },
                },
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "initialCooldownPeriod": {"type": "integer", "minimum": 0},
                "idleReplicaCount": {"type": "integer", "minimum": 0},
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "fallback": {"type": "object"},
                "advanced": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "restoreToOriginalReplicaCount": {"type": "boolean"},
                        "horizontalPodAutoscalerConfig": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {"name": {"type": "string"}, "behavior": {"type": "object"}},
                        },
                        "scalingModifiers": {"type": "object"},
                    },
                },
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["type", "metadata"],
                        "additionalProperties": False,
                        "properties": {
                            "type": {"type": "string"},
                            "name": {"type": "string"},
                            "useCachedMetrics": {"type": "boolean"},
                            "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
                            # KEDA trigger metadata is map[string]string.
                            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
                            "authenticationRef": {
                                "type": "object",
                                "required": ["name"],
                                "additionalProperties": False,
                                "properties": {
                                    "name": {"type": "string"},
                                    "kind": {"enum": ["TriggerAuthentication", "ClusterTriggerAuthentication"]},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}

# azure-eventhub trigger metadata, workload-identity variant (no connection strings).
EVENTHUB_TRIGGER_METADATA_SCHEMA = {
    "type": "object",
    "required": [
        "eventHubNamespace",
        "eventHubName",
        "consumerGroup",
        "checkpointStrategy",
        "storageAccountName",
        "blobContainer",
    ],
    "additionalProperties": False,
    "properties": {
        "eventHubNamespace": {"type": "string", "pattern": "^[a-z][a-z0-9-]{4,48}[a-z0-9]$"},
        "eventHubName": {"type": "string", "minLength": 1},
        "consumerGroup": {"type": "string", "minLength": 1},
        "checkpointStrategy": {"enum": ["blobMetadata"]},
        "storageAccountName": {"type": "string", "pattern": "^[a-z0-9]{3,24}$"},
        "blobContainer": {"type": "string", "pattern": "^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$"},
        "unprocessedEventThreshold": {"type": "string", "pattern": "^[1-9][0-9]*$"},
        "activationUnprocessedEventThreshold": {"type": "string", "pattern": "^[0-9]+$"},
        "cloud": {"type": "string"},
    },
}

TRIGGER_AUTHENTICATION_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "kind": {"const": "TriggerAuthentication"},
        "metadata": _OBJECT_META,
        "spec": {
            "type": "object",
            "required": ["podIdentity"],
            "additionalProperties": False,
            "properties": {
                "podIdentity": {
                    "type": "object",
                    "required": ["provider"],
                    "additionalProperties": False,
                    "properties": {
                        "provider": {"const": "azure-workload"},
                        "identityId": {
                            "type": "string",
                            "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
                        },
                        "identityTenantId": {"type": "string"},
                        "identityAuthorityHost": {"type": "string"},
                    },
                }
            },
        },
    },
}


def _schema_errors(schema: dict[str, Any], doc: Any) -> list[str]:
    jsonschema = require("jsonschema")
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(doc)]


def test_scaledobject_matches_keda_schema(resources):
    so = find_one(resources, "ScaledObject")
    errors = _schema_errors(SCALED_OBJECT_SCHEMA, so)
    assert not errors, "\n".join(errors)
    (trigger,) = so["spec"]["triggers"]
    assert trigger["type"] == "azure-eventhub"
    errors = _schema_errors(EVENTHUB_TRIGGER_METADATA_SCHEMA, trigger["metadata"])
    assert not errors, "\n".join(errors)


def test_triggerauthentication_uses_workload_identity(resources):
    ta = find_one(resources, "TriggerAuthentication")
    errors = _schema_errors(TRIGGER_AUTHENTICATION_SCHEMA, ta)
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda so: so["spec"].__setitem__("maxReplicas", 4), id="unknown-spec-field"),
        pytest.param(
            lambda so: so["spec"]["triggers"][0]["metadata"].__setitem__("unprocessedEventThreshold", 64),
            id="non-string-metadata",
        ),
        pytest.param(lambda so: so["spec"].pop("scaleTargetRef"), id="no-target"),
    ],
)
def test_keda_schema_rejects_broken_scaledobject(resources, mutate):
    broken = copy.deepcopy(find_one(resources, "ScaledObject"))
    mutate(broken)
    assert _schema_errors(SCALED_OBJECT_SCHEMA, broken)


def test_eventhub_metadata_schema_rejects_other_checkpoint_strategy(resources):
    meta = copy.deepcopy(find_one(resources, "ScaledObject")["spec"]["triggers"][0]["metadata"])
    meta["checkpointStrategy"] = "azureFunction"
    assert _schema_errors(EVENTHUB_TRIGGER_METADATA_SCHEMA, meta)


# --- kustomization ---------------------------------------------------------------


def test_kustomization_lists_every_manifest_but_the_secret_example(manifests):
    (kust,) = manifests["kustomization.yaml"]
    assert kust["kind"] == "Kustomization"
    listed = kust["resources"]
    assert len(listed) == len(set(listed)), "duplicate kustomization resources"
    for name in listed:
        assert (DEPLOY_DIR / name).is_file(), f"kustomization lists missing {name}"
    assert SECRET_EXAMPLE not in listed, "the Secret example must not be applied"
    assert set(listed) == set(_all_k8s_files()) - {SECRET_EXAMPLE}


def test_kustomization_image_override_matches_container(manifests, resources):
    (kust,) = manifests["kustomization.yaml"]
    deployment = find_one(resources, "Deployment")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    names = [i["name"] for i in kust.get("images", [])]
    assert image.split(":")[0] in names, f"kustomization images {names} do not rewrite {image}"


def test_everything_lives_in_the_namespace(resources, manifests):
    ns = find_one(resources, "Namespace")["metadata"]["name"]
    (kust,) = manifests["kustomization.yaml"]
    assert kust.get("namespace") == ns
    for r in resources:
        if r["kind"] != "Namespace":
            assert r["metadata"].get("namespace") == ns, f"{r['kind']}/{r['metadata']['name']} not in {ns}"


# --- cross-references ------------------------------------------------------------


def _pod_spec(resources) -> dict[str, Any]:
    return find_one(resources, "Deployment")["spec"]["template"]["spec"]


def _container(resources) -> dict[str, Any]:
    containers = _pod_spec(resources)["containers"]
    assert len(containers) == 1
    return containers[0]


def _config(resources) -> dict[str, str]:
    return find_one(resources, "ConfigMap")["data"]


def _trigger_meta(resources) -> dict[str, str]:
    return find_one(resources, "ScaledObject")["spec"]["triggers"][0]["metadata"]


def _port_number(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in container.get("ports", []) if "name" in p}
    assert port in named, f"named port {port!r} not declared by the container"
    return named[port]


def test_scaledobject_targets_the_deployment(resources):
    so = find_one(resources, "ScaledObject")
    dep = find_one(resources, "Deployment")
    ref = so["spec"]["scaleTargetRef"]
    assert ref["name"] == dep["metadata"]["name"]
    assert ref.get("kind", "Deployment") == "Deployment"
    assert ref.get("apiVersion", "apps/v1") == "apps/v1"
    assert so["metadata"]["namespace"] == dep["metadata"]["namespace"]
    assert "replicas" not in dep["spec"], "KEDA owns the replica count; drop spec.replicas"


def test_lag_threshold_is_derived_from_the_window_and_checkpoint_interval_the_pods_run_with(resources):
    from processor.config import load_settings
    from processor.hub.status import DESIGN_RATE_PER_REPLICA, keda_threshold

    # The settings a pod runs with: code defaults overridden by the ConfigMap's variables.
    settings = load_settings(env={k: v for k, v in _config(resources).items() if k.startswith("PROCESSOR_")}, path=None)
    expected = keda_threshold(DESIGN_RATE_PER_REPLICA, settings)
    assert int(_trigger_meta(resources)["unprocessedEventThreshold"]) == expected


def test_max_replicas_equals_partition_count(resources, hub_entity):
    so = find_one(resources, "ScaledObject")["spec"]
    partitions = int(hub_entity["PartitionCount"])
    assert so["maxReplicaCount"] == partitions
    assert 1 <= so.get("minReplicaCount", 0) <= so["maxReplicaCount"]


def test_scaler_reads_the_workers_checkpoints(resources, compose, hub_entity):
    meta = _trigger_meta(resources)
    cfg = _config(resources)
    compose_env = env_dict(compose["services"]["worker-1"]["environment"])

    assert meta["checkpointStrategy"] == "blobMetadata"
    assert (
        meta["blobContainer"] == cfg["PROCESSOR_CHECKPOINT_CONTAINER"] == compose_env["PROCESSOR_CHECKPOINT_CONTAINER"]
    )
    assert (
        meta["consumerGroup"]
        == cfg["PROCESSOR_CONSUMER_GROUP"]
        == compose_env["PROCESSOR_CONSUMER_GROUP"]
        == CONTRACT_CONSUMER_GROUP
    )
    assert (
        meta["eventHubName"]
        == cfg["PROCESSOR_EVENTHUB_NAME"]
        == compose_env["PROCESSOR_EVENTHUB_NAME"]
        == hub_entity["Name"]
        == CONTRACT_HUB
    )
    # KEDA appends the Service Bus suffix to the short namespace name.
    assert f"{meta['eventHubNamespace']}.servicebus.windows.net" == cfg["PROCESSOR_EVENTHUB_NAMESPACE"]
    account_host = urlsplit(cfg["PROCESSOR_CHECKPOINT_ACCOUNT_URL"]).hostname
    assert account_host == f"{meta['storageAccountName']}.blob.core.windows.net"
    # The Python checkpoint store lower-cases the whole blob name; KEDA only
    # lower-cases the consumer group, so namespace and hub must be lower case.
    assert cfg["PROCESSOR_EVENTHUB_NAMESPACE"] == cfg["PROCESSOR_EVENTHUB_NAMESPACE"].lower()
    assert meta["eventHubName"] == meta["eventHubName"].lower()


def test_scaler_authentication_reference_resolves(resources):
    so = find_one(resources, "ScaledObject")
    ta = find_one(resources, "TriggerAuthentication")
    ref = so["spec"]["triggers"][0]["authenticationRef"]
    assert ref["name"] == ta["metadata"]["name"]
    assert ref.get("kind", "TriggerAuthentication") == "TriggerAuthentication"
    assert ta["spec"]["podIdentity"]["provider"] == "azure-workload"


def test_workload_identity_wiring(resources):
    sa = find_one(resources, "ServiceAccount")
    dep = find_one(resources, "Deployment")
    pod = dep["spec"]["template"]
    assert pod["spec"]["serviceAccountName"] == sa["metadata"]["name"]
    assert sa["metadata"]["annotations"].get("azure.workload.identity/client-id")
    assert pod["metadata"]["labels"].get("azure.workload.identity/use") == "true"
    cfg = _config(resources)
    assert "PROCESSOR_EVENTHUB_CONNECTION_STRING" not in cfg and "PROCESSOR_CHECKPOINT_CONNECTION_STRING" not in cfg
    assert cfg["PROCESSOR_EVENTHUB_NAMESPACE"].endswith(".servicebus.windows.net")
    assert urlsplit(cfg["PROCESSOR_CHECKPOINT_ACCOUNT_URL"]).scheme == "https"


def test_env_sources_exist(resources, manifests):
    container = _container(resources)
    sources = container.get("envFrom", [])
    cm_refs = [s["configMapRef"]["name"] for s in sources if "configMapRef" in s]
    secret_refs = [s["secretRef"]["name"] for s in sources if "secretRef" in s]
    assert cm_refs == [find_one(resources, "ConfigMap")["metadata"]["name"]]
    (example,) = manifests[SECRET_EXAMPLE]
    assert example["kind"] == "Secret"
    assert secret_refs == [example["metadata"]["name"]]
    assert "PROCESSOR_STORE_URL" in example["stringData"]
    assert urlsplit(example["stringData"]["PROCESSOR_STORE_URL"]).scheme == "postgresql"


def test_probes_follow_the_contract(resources):
    container = _container(resources)
    live = container["livenessProbe"]["httpGet"]
    ready = container["readinessProbe"]["httpGet"]
    assert live["path"] == CONTRACT_LIVENESS_PATH
    assert ready["path"] == CONTRACT_READINESS_PATH
    assert _port_number(container, live["port"]) == CONTRACT_HTTP_PORT
    assert _port_number(container, ready["port"]) == CONTRACT_HTTP_PORT
    if "startupProbe" in container:
        assert container["startupProbe"]["httpGet"]["path"] == CONTRACT_LIVENESS_PATH
    assert _config(resources)["PROCESSOR_HTTP_ADDRESS"].endswith(f":{CONTRACT_HTTP_PORT}")


def test_grace_period_exceeds_shutdown_timeout(resources):
    grace = _pod_spec(resources)["terminationGracePeriodSeconds"]
    timeout = float(_config(resources).get("PROCESSOR_SHUTDOWN_TIMEOUT", CONTRACT_DEFAULT_SHUTDOWN_TIMEOUT))
    assert grace > timeout, f"terminationGracePeriodSeconds {grace} <= shutdown timeout {timeout}"
    assert grace >= 45


def test_ownership_expiration_exceeds_load_balancing_interval(resources):
    cfg = _config(resources)
    assert float(cfg["PROCESSOR_OWNERSHIP_EXPIRATION"]) > float(cfg["PROCESSOR_LOAD_BALANCING_INTERVAL"])


def test_pod_hardening(resources):
    pod = _pod_spec(resources)
    container = _container(resources)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"].get("runAsUser", 1) != 0
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert "ALL" in sc["capabilities"]["drop"]
    tmp_mounts = [m["name"] for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert tmp_mounts, "/tmp must be writable (emptyDir) with a read-only root filesystem"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[tmp_mounts[0]]
    for kind in ("requests", "limits"):
        values = container["resources"][kind]
        assert {"cpu", "memory"} <= set(values), f"missing {kind}"
        for name, quantity in values.items():
            assert QUANTITY.fullmatch(str(quantity)), f"{kind}.{name}={quantity!r} is not a Kubernetes quantity"
    assert _cpu_millis(container["resources"]["requests"]["cpu"]) <= _cpu_millis(
        container["resources"]["limits"]["cpu"]
    )


def test_prometheus_scrape_annotations(resources):
    container = _container(resources)
    ann = find_one(resources, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/scrape"] == "true"
    assert int(ann["prometheus.io/port"]) == CONTRACT_HTTP_PORT == _port_number(container, "http")
    assert ann["prometheus.io/path"] == CONTRACT_METRICS_PATH


def test_service_and_pdb_select_the_pods(resources):
    pod_labels = find_one(resources, "Deployment")["spec"]["template"]["metadata"]["labels"]
    container = _container(resources)
    svc = find_one(resources, "Service")
    assert svc["spec"]["selector"].items() <= pod_labels.items()
    (port,) = svc["spec"]["ports"]
    assert _port_number(container, port["targetPort"]) == CONTRACT_HTTP_PORT
    pdb = find_one(resources, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    dep_selector = find_one(resources, "Deployment")["spec"]["selector"]["matchLabels"]
    assert dep_selector.items() <= pod_labels.items()
