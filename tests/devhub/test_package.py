"""devhub is a development tool on top of `processor`: production code never imports it, and it builds on the
SDK's public API only. Read from the source (ast), so an import inside a function counts as much as one at the top."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEVHUB_MODULE = re.compile(r"devhub(\.[A-Za-z_]\w*)*")  # "devhub", "devhub.server", ...: a name to import by


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import statement in the file, wherever it stands (a function's body included)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def devhub_module_names(path: Path) -> list[tuple[int, str]]:
    """(line, text) for every string that is devhub's module name: what `__import__`, `importlib.import_module`
    or a list of plug-in modules would import it by."""
    return [
        (node.lineno, node.value)
        for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path)))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and DEVHUB_MODULE.fullmatch(node.value)
    ]


def test_no_module_of_processor_imports_devhub():
    modules = sorted((ROOT / "processor").rglob("*.py"))
    assert len(modules) > 30, "the walk should see the whole processor package"
    offending = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for path in modules
        for line, name in imported_modules(path) + devhub_module_names(path)
        if DEVHUB_MODULE.fullmatch(name)
    ]
    assert not offending, "processor must not import the development tool devhub:\n" + "\n".join(offending)


def test_devhub_imports_no_private_module_of_the_sdk():
    offending = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for path in sorted((ROOT / "devhub").rglob("*.py"))
        for line, name in imported_modules(path)
        if name.startswith("azure.") and any(part.startswith("_") for part in name.split("."))
    ]
    assert not offending, "devhub uses the SDK's public API only:\n" + "\n".join(offending)


def test_the_walk_sees_imports_inside_functions_and_by_name(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def f():\n    from devhub.server import DevHub\n\n"
        "for name in ('devhub.command', 'devhub'):\n    __import__(name)\n"
        "print('run `devhub serve`, see docs/devhub.md')\n"
    )
    assert [name for _, name in imported_modules(sample)] == ["devhub.server"]
    assert sorted(name for _, name in devhub_module_names(sample)) == ["devhub", "devhub.command"]
