"""The package's imports run one way: no circle, and no import from a higher layer into a lower one.

Layers, lowest first: events, core (pure), runtime <- config, stores, hub, projector <- worker, ingest <- http
<- cli. A module may import its own layer or a lower one. Imports under `if TYPE_CHECKING:` are left out
(they never run); imports inside functions count (they run, just later). Read from the source with `ast`.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "processor"

LAYERS = {
    "processor.events": 0,
    "processor.core": 1,
    "processor.sim": 1,
    "processor.defaults": 1,
    "processor.config": 2,
    "processor.stores": 2,
    "processor.hub": 2,
    "processor.capture": 2,  # Event Hubs Capture files: an adapter, as hub is
    "processor.projector": 2,
    "processor.namespace_fold": 2,
    "processor.tracing": 2,  # the tracer provider and exporter, for the worker and its feeder
    "processor.admission": 3,
    "processor.worker": 3,
    "processor.ingest": 3,
    "processor.ingest_wire": 2,  # what a parallel ingest and its fold processes say: settings and the core's tally
    "processor.ingest_process": 3,  # a fold process of a parallel ingest
    "processor.ingest_shards": 3,  # the parallel ingest's parent
    "processor.handoff": 3,  # Capture, then the hub: ingest and the parallel replay
    "processor.replay": 3,  # parallel hub replay: feeder processes into the streaming ingest
    "processor.runtime": 0,  # signals and logging: imports nothing of the package
    "processor.http": 4,
    "processor.cli": 5,
    "processor": 5,  # the package's own __init__
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> int:
    best = max((name for name in LAYERS if module == name or module.startswith(name + ".")), key=len, default=None)
    assert best is not None, f"{module} belongs to no layer: add it to LAYERS in {Path(__file__).name}"
    return LAYERS[best]


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path, module: str) -> set[str]:
    """The processor modules `module` imports (at run time, wherever in the file)."""
    tree = ast.parse(path.read_text("utf-8"))
    found: set[str] = set()
    is_package = path.name == "__init__.py"

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "processor")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if target.split(".")[0] == "processor":
                found.add(target)
                # `from processor.x import y` may name a submodule y.
                found.update(
                    f"{target}.{a.name}"
                    for a in node.names
                    if (PACKAGE.parent / (f"{target}.{a.name}".replace(".", "/") + ".py")).exists()
                )
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found - {module}


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in imports_of(path, name) if m in modules} for name, path in modules.items()}


def test_no_module_imports_a_higher_layer():
    upward = [
        f"{a} (layer {layer_of(a)}) imports {b} (layer {layer_of(b)})"
        for a, targets in graph().items()
        for b in sorted(targets)
        if layer_of(b) > layer_of(a)
    ]
    assert upward == []


def test_there_is_no_import_circle():
    edges = graph()
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in sorted(edges[node]):
            # A package's __init__ importing its own modules is how packages re-export, not a circle.
            if node == target.rpartition(".")[0] or target == node.rpartition(".")[0]:
                continue
            if state.get(target) == 1:
                circles.append(path[path.index(target) :] + [target])
            elif state.get(target) is None:
                walk(target, [*path, target])
        state[node] = 2

    for name in sorted(edges):
        if name not in state:
            walk(name, [name])
    assert circles == []


def test_the_layer_test_sees_an_upward_import(tmp_path):
    """The walk itself can fail: a lower module importing a higher one, lazily, is found."""
    path = tmp_path / "processor" / "core" / "bad.py"
    path.parent.mkdir(parents=True)
    path.write_text("def f():\n    from processor.http.server import start_http\n")
    assert "processor.http.server" in imports_of(path, "processor.core.bad")
    assert layer_of("processor.http.server") > layer_of("processor.core.bad")
