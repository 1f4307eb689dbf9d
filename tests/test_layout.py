"""The tree reads as the flow (docs/architecture.md): Dagster only in the wiring, its internals
only in one adapter module, no module grown into a grab-bag."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "attendance_pipeline"
# Modules that wire the core to Dagster; everything else is plain Python.
WIRING = ("assets/", "resources/", "checks/specs.py", "automation.py", "definitions.py",
          "dagster_api.py", "sync.py", "refresh.py", "organisations.py")  # fmt: skip
MAX_LINES = 620


def modules() -> dict[str, ast.Module]:
    return {
        str(path.relative_to(PACKAGE)): ast.parse(path.read_text(encoding="utf-8"))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def imported(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_domain_modules_do_not_import_dagster():
    offenders = [
        name
        for name, tree in modules().items()
        if not name.startswith(WIRING)
        and any(m == "dagster" or m.startswith("dagster.") for m in imported(tree))
    ]
    assert offenders == []


def test_dagster_internals_only_in_the_adapter_module():
    offenders = [
        name
        for name, tree in modules().items()
        if any(m.startswith("dagster._") for m in imported(tree)) and name != "dagster_api.py"
    ]
    assert offenders == []


def test_no_module_is_a_grab_bag():
    sizes = {
        str(path.relative_to(PACKAGE)): len(path.read_text(encoding="utf-8").splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}
