"""The import graph: ``flows`` is the bottom layer, ``server`` and ``dashboard`` sit on it."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("flows", "server", "dashboard")


def _modules() -> dict[str, Path]:
    """Every module of the packages by dotted name (``flows.sources.x``)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(module: str, path: Path) -> Iterator[str]:
    """The project modules ``module`` imports anywhere in its body, lazily or not."""
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                stem = ".".join([*base, node.module] if node.module else base)
            else:
                stem = node.module or ""
            names = [stem, *(f"{stem}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            if name in MODULES and name != module:
                yield name


GRAPH = {module: set(_imports(module, path)) for module, path in MODULES.items()}


def test_the_walk_sees_the_imports() -> None:
    """The walk finds known edges, so the checks below look at the real graph."""
    assert "flows.dataflow" in GRAPH["server.flowproc"]
    assert "server.app" in GRAPH["server.cli"]


def test_flows_never_imports_server_or_dashboard() -> None:
    """No module under flows/ imports server/ or dashboard/, even inside a function."""
    upward = sorted(
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        if module.split(".")[0] == "flows"
        for target in targets
        if target.split(".")[0] in {"server", "dashboard"}
    )
    assert upward == []


def test_no_import_cycle_between_packages() -> None:
    """The top-level packages import each other in one direction only."""
    edges = {
        (module.split(".")[0], target.split(".")[0])
        for module, targets in GRAPH.items()
        for target in targets
    }
    assert not {(a, b) for a, b in edges if a != b and (b, a) in edges}


def test_no_import_cycle_between_modules() -> None:
    """No module imports itself back through others, even through lazy imports."""
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(GRAPH[module]):
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
    assert cycles == []


def test_the_dashboard_writes_no_sql() -> None:
    """The dashboard reads through the store's API: no SQL text and no ``select`` call."""
    sql = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE)\b\s+\S|\.select\(")
    found = sorted(
        f"{path.relative_to(ROOT)}:{number}"
        for module, path in MODULES.items()
        if module.split(".")[0] == "dashboard"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if sql.search(line)
    )
    assert found == []
