"""Fixtures for the offline validation of the shipping artefacts (tests/deploy).

Nothing here touches the network: files come from the repository, schemas from
PyPI packages.  A missing test dependency fails naming the requirement.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

# Make the helper module importable whatever pytest import mode is configured.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from deploykit import (  # noqa: E402
    COMPOSE_FILE,
    CONTRACT_HUB,
    DEPLOY_DIR,
    EMULATOR_CONFIG,
    compose_interpolate,
    load_yaml,
    load_yaml_documents,
)


@pytest.fixture(scope="session")
def compose_raw() -> dict[str, Any]:
    assert COMPOSE_FILE.is_file(), f"{COMPOSE_FILE} is missing"
    data = load_yaml(COMPOSE_FILE)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="session")
def compose(compose_raw: dict[str, Any]) -> dict[str, Any]:
    """The compose model after interpolation with an empty environment."""
    return compose_interpolate(compose_raw)


@pytest.fixture(scope="session")
def emulator_config() -> dict[str, Any]:
    assert EMULATOR_CONFIG.is_file(), f"{EMULATOR_CONFIG} is missing"
    return json.loads(EMULATOR_CONFIG.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def hub_entity(emulator_config: dict[str, Any]) -> dict[str, Any]:
    namespaces = emulator_config["UserConfig"]["NamespaceConfig"]
    entities = {e["Name"]: e for ns in namespaces for e in ns["Entities"]}
    assert CONTRACT_HUB in entities, f"Config.json declares hubs {sorted(entities)}, not {CONTRACT_HUB!r}"
    return entities[CONTRACT_HUB]


@pytest.fixture(scope="session")
def manifests() -> dict[str, list[dict[str, Any]]]:
    """All YAML files under deploy/, by file name."""
    files = sorted(DEPLOY_DIR.glob("*.yaml")) + sorted(DEPLOY_DIR.glob("*.yml"))
    assert files, f"no manifests under {DEPLOY_DIR}"
    return {p.name: load_yaml_documents(p) for p in files}


@pytest.fixture(scope="session")
def resources(manifests: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Kubernetes objects (everything but kustomization.yaml)."""
    return [doc for name, docs in manifests.items() for doc in docs if doc.get("kind") != "Kustomization"]
