"""Helpers shared by the tests/deploy modules (imported as `deploykit`).

Everything here reads files from the repository and schemas bundled in PyPI
packages; nothing touches the network.  A missing test dependency is a test
failure naming the requirement to install, never a skip.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
EMULATOR_CONFIG = REPO / "config" / "eventhubs-emulator" / "Config.json"
DEPLOY_DIR = REPO / "deploy"
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
DEPLOY_DOC = REPO / "docs" / "deploy.md"

# The worker contract (fixed): defaults the code uses when nothing is configured.
CONTRACT_HUB = "events"
CONTRACT_CONSUMER_GROUP = "$Default"
CONTRACT_PARTITIONS = 4
CONTRACT_REPLAY_GROUP = "replay"
CONTRACT_HTTP_PORT = 8080
CONTRACT_LIVENESS_PATH = "/healthz"
CONTRACT_READINESS_PATH = "/readyz"
CONTRACT_METRICS_PATH = "/metrics"
CONTRACT_DEFAULT_SHUTDOWN_TIMEOUT = 20

# Requirement strings, as they should appear in the project's test extras.
REQUIREMENTS = {
    "yaml": "PyYAML>=6,<7",
    "jsonschema": "jsonschema>=4.23,<5",
    "kubernetes_validate": "kubernetes-validate>=1.35,<2",
    "check_jsonschema": "check-jsonschema>=0.33,<1",
    "processor": "the project itself (pip install -e '.[test]')",
}


def require(module: str) -> ModuleType:
    """Import a test dependency or fail with the requirement to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised only when missing
        requirement = REQUIREMENTS.get(module.split(".")[0], module)
        pytest.fail(
            f"missing test dependency for tests/deploy: pip install '{requirement}' ({exc})",
            pytrace=False,
        )


def load_yaml_documents(path: Path) -> list[dict[str, Any]]:
    yaml = require("yaml")
    with path.open(encoding="utf-8") as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc is not None]


def load_yaml(path: Path) -> Any:
    docs = load_yaml_documents(path)
    assert len(docs) == 1, f"{path} should hold exactly one YAML document, found {len(docs)}"
    return docs[0]


# --- Compose interpolation -------------------------------------------------------
# Compose substitutes $VAR / ${VAR} / ${VAR:-default} in string values and uses
# "$$" for a literal "$".  We resolve with an empty environment, so every value
# checked is what `docker compose up` would see without a .env file.
_INTERPOLATION = re.compile(r"\$(?:(?P<escaped>\$)|\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*))")


class BareVariableError(ValueError):
    pass


def compose_interpolate(value: Any, env: dict[str, str] | None = None) -> Any:
    env = env or {}
    if isinstance(value, dict):
        return {k: compose_interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [compose_interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group("escaped"):
            return "$"
        if match.group("named") is not None:
            # $Default would silently become "" - always a bug in this stack.
            raise BareVariableError(f"unescaped ${match.group('named')} in {value!r} (write $$ for a literal $)")
        expr = match.group("braced")
        for sep in (":-", "-", ":?", "?"):
            if sep in expr:
                name, default = expr.split(sep, 1)
                if sep in (":?", "?"):
                    if name not in env:
                        raise BareVariableError(f"required variable {name} in {value!r}")
                    return env[name]
                got = env.get(name)
                if got is None or (sep == ":-" and got == ""):
                    return default
                return got
        if expr not in env:
            raise BareVariableError(f"${{{expr}}} in {value!r} has no default")
        return env[expr]

    return _INTERPOLATION.sub(substitute, value)


def env_dict(environment: Any) -> dict[str, str]:
    """Compose `environment` (mapping or KEY=VALUE list) as a dict of strings."""
    if environment is None:
        return {}
    if isinstance(environment, dict):
        return {k: "" if v is None else str(v) for k, v in environment.items()}
    out: dict[str, str] = {}
    for item in environment:
        key, _, val = str(item).partition("=")
        out[key] = val
    return out


def parse_connection_string(value: str) -> dict[str, str]:
    parts: dict[str, str] = {}
    for chunk in value.split(";"):
        if not chunk.strip():
            continue
        key, sep, val = chunk.partition("=")
        assert sep, f"malformed connection string segment {chunk!r}"
        parts[key.strip().lower()] = val
    return parts


def find_one(resources: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [r for r in resources if r.get("kind") == kind]
    assert len(found) == 1, f"expected exactly one {kind} under deploy/, found {len(found)}"
    return found[0]
