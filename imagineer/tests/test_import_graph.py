"""The project's import graph: no cycle among modules, and an engine that knows no Django.

Built from the source with ``ast`` (nothing is imported): an edge for every import a module
runs when it is loaded (module level, including ``try``/``if`` blocks, excluding
``if TYPE_CHECKING:``). Imports inside functions are not edges: that is where tasks import
services (HackSoft's direction), and it is the only place they may.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIP_DIRS = {".venv", "node_modules", "var", "static", "templates", "migrations", "__pycache__"}
# Cycles the graph may still hold; each entry is a sorted tuple of the modules of one cycle.
ALLOWED_CYCLES: set[tuple[str, ...]] = set()


def _packages() -> list[str]:
    return sorted(
        path.parent.name
        for path in ROOT.glob("*/__init__.py")
        if path.parent.name not in SKIP_DIRS and not path.parent.name.startswith(".")
    )


def _modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package in _packages():
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if SKIP_DIRS & set(parts):
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path
    return modules


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _load_time_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.append(node)
            elif isinstance(node, ast.If):
                if not _is_type_checking(node):
                    visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
                visit(node.orelse)
                visit(node.finalbody)
            elif isinstance(node, ast.With):
                visit(node.body)

    visit(tree.body)
    return found


def _all_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, known: set[str]) -> set[str]:
    names: set[str] = set()
    if isinstance(node, ast.Import):
        candidates = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            anchor = module.split(".") if is_package else module.split(".")[:-1]
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join([*anchor, base] if base else anchor)
        candidates = [f"{base}.{alias.name}" for alias in node.names] + [base]
    for candidate in candidates:
        # The longest known module the name points into (a name may be a class in a module).
        parts = candidate.split(".")
        for end in range(len(parts), 0, -1):
            prefix = ".".join(parts[:end])
            if prefix in known:
                names.add(prefix)
                break
    names.discard(module)
    return names


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges: set[str] = set()
        for node in _load_time_imports(tree):
            edges |= _targets(node, name, path.name == "__init__.py", known)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def connect(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for node in sorted(graph):
            if node not in index:
                connect(node)
    finally:
        sys.setrecursionlimit(limit)
    return found


def test_the_graph_sees_the_project():
    graph = import_graph()
    assert {"generation.worker", "generation.services.jobs", "imagineer.jobs"} <= set(graph)
    # A real edge in each direction of the rule: services -> tasks at module level.
    assert "generation.tasks" in graph["generation.services.jobs"]
    assert "generation.services.jobs" not in graph["generation.tasks"]


def test_no_import_cycle_among_project_modules():
    found = [cycle for cycle in cycles(import_graph()) if tuple(cycle) not in ALLOWED_CYCLES]
    assert not found, "Import cycles (module-level imports):\n" + "\n".join(" <-> ".join(c) for c in found)


def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


ENGINE_FORBIDDEN = ("django", "rest_framework", "celery")


@pytest.mark.parametrize("path", sorted((ROOT / "generation" / "engine").glob("*.py")), ids=lambda p: p.name)
def test_the_engine_imports_no_django_model_service_or_setting(path):
    """Anywhere in the file, lazily too: only the standard library, third parties and the engine itself."""
    project = set(_packages())
    tree = ast.parse(path.read_text())
    bad = []
    for node in _all_imports(tree):
        names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
        for name in names:
            top = name.split(".")[0]
            if top in ENGINE_FORBIDDEN or (top in project and not name.startswith("generation.engine")):
                bad.append(f"line {node.lineno}: {name}")
    assert not bad, f"{path.name} imports outside the engine: {bad}"


# Apps whose services/tasks still use the opposite direction (none since every app turned round).
DIRECTION_PENDING: set[str] = set()


def _app_modules(kind: str) -> dict[str, Path]:
    return {
        name: path
        for name, path in _modules().items()
        if name.split(".")[1:2] == [kind] and name.split(".")[0] not in DIRECTION_PENDING
    }


def test_one_direction_tasks_never_import_services_at_load_time():
    """Services import ``*_task`` at module level; tasks import services inside the task body."""
    graph = import_graph()
    bad = [
        f"{name} -> {target}"
        for name in _app_modules("tasks")
        for target in graph[name]
        if ".services" in target or target.endswith(".worker")
    ]
    assert not bad, bad


def test_one_direction_services_never_import_tasks_lazily():
    """A lazy import of a tasks module from a service is the old cycle, hidden."""
    bad = []
    for name, path in _app_modules("services").items():
        tree = ast.parse(path.read_text())
        load_time = {id(node) for node in _load_time_imports(tree)}
        for node in _all_imports(tree):
            if id(node) in load_time:
                continue
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            bad += [f"{name}:{node.lineno} imports {n}" for n in names if n.endswith(".tasks")]
    assert not bad, bad
