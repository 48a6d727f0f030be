"""Static checks of the Dockerfile / .dockerignore (no Docker engine needed)."""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib

import pytest
from deploykit import (
    CONTRACT_HTTP_PORT,
    DEPLOY_DIR,
    DOCKERFILE,
    DOCKERIGNORE,
    REPO,
    find_one,
    load_yaml_documents,
)

COMPILERS = ("build-essential", "gcc", "g++", "clang", "make", "python3-dev", "libpq-dev")


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined."""
    out: list[tuple[str, str]] = []
    buf = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # comment inside a continued instruction
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    assert not buf, "Dockerfile ends inside a continued line"
    return out


def stages(text: str) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for ins in instructions(text):
        if ins[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(ins)
    return result


def resolve_args(value: str, text: str) -> str:
    defaults = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", text, flags=re.M))
    return re.sub(r"\$\{?(\w+)\}?", lambda m: defaults.get(m.group(1), m.group(0)), value)


@pytest.fixture(scope="module")
def dockerfile() -> str:
    assert DOCKERFILE.is_file(), "Dockerfile is missing"
    return DOCKERFILE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def final(dockerfile):
    all_stages = stages(dockerfile)
    assert len(all_stages) >= 2, "expected a multi-stage build (builder + runtime)"
    return all_stages[-1]


def _one(stage, word):
    found = [args for ins, args in stage if ins == word]
    assert found, f"final stage has no {word}"
    return found[-1]


def test_final_stage_is_python_311_slim(dockerfile, final):
    base = resolve_args(_one(final, "FROM").split()[0], dockerfile)
    assert base == "python:3.11-slim", base


def test_final_stage_copies_from_builder_and_has_no_compilers(dockerfile, final):
    copies = [args for ins, args in final if ins == "COPY"]
    assert any(a.startswith("--from=") for a in copies), "final stage must copy the built venv from the builder"
    runs = " ".join(args for ins, args in final if ins == "RUN")
    for tool in COMPILERS:
        assert not re.search(rf"(?<![\w-]){re.escape(tool)}(?![\w-])", runs), f"final stage installs {tool}"
    builder_runs = " ".join(args for st in stages(dockerfile)[:-1] for ins, args in st if ins == "RUN")
    assert "pip wheel" in builder_runs or "pip install" in builder_runs


def test_runs_as_non_root_numeric_user_matching_the_pod(final):
    user = _one(final, "USER").split(":")[0]
    assert user.isdigit() and int(user) != 0, f"USER must be a numeric non-root uid, got {user!r}"
    (dep,) = load_yaml_documents(DEPLOY_DIR / "deployment.yaml")
    assert dep["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(user)


def test_entrypoint_is_exec_form_console_script(final):
    entrypoint = json.loads(_one(final, "ENTRYPOINT"))  # exec form is a JSON array
    cmd = json.loads(_one(final, "CMD"))
    assert entrypoint == ["processor"]
    assert cmd == ["run"]
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "processor" in pyproject["project"]["scripts"], "the image relies on the `processor` console script"


def test_signal_and_port(final):
    assert _one(final, "STOPSIGNAL") == "SIGTERM"
    assert str(CONTRACT_HTTP_PORT) in _one(final, "EXPOSE").split()


def test_instruction_parser_detects_shell_form():
    parsed = stages("FROM a AS b\nRUN x\nFROM python:3.11-slim\nENTRYPOINT processor run\n")
    with pytest.raises(json.JSONDecodeError):
        json.loads(_one(parsed[-1], "ENTRYPOINT"))


def _ignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pat in patterns:
        negate = pat.startswith("!")
        pat = pat[1:] if negate else pat
        pat = pat.rstrip("/")
        if fnmatch.fnmatch(path, pat) or fnmatch.fnmatch(path, pat.replace("**/", "")) or path.startswith(pat + "/"):
            ignored = not negate
    return ignored


def test_dockerignore_keeps_the_build_inputs_only():
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for needed in ("pyproject.toml", "README.md", "processor/__init__.py"):
        assert not _ignored(needed, patterns), f".dockerignore excludes {needed}, which the build copies"
    for unwanted in (".venv/bin/python", ".git/HEAD", "node_modules/x", "data/store.sqlite", "tests/deploy/x.py"):
        assert _ignored(unwanted, patterns), f".dockerignore lets {unwanted} into the build context"


def test_deployment_image_is_the_one_kustomize_rewrites(resources):
    dep = find_one(resources, "Deployment")
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container.get("args", ["run"]) == ["run"]
    assert "command" not in container, "keep the image ENTRYPOINT (exec form, SIGTERM reaches processor)"
