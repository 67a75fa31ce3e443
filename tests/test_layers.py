"""The package's import structure: no module-level cycles, leaves that import no layer above.

Read from the source with :mod:`ast` (imports at module level; those under
``if TYPE_CHECKING:`` and inside functions are not edges), so a new cycle fails here
before it fails an import in some order.
"""

from __future__ import annotations

import ast
from pathlib import Path

import limitor

ROOT = Path(limitor.__file__).parent


def module_graph() -> dict[str, set[str]]:
    """Each limitor module and the limitor modules it imports at module level."""
    paths = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        paths[name] = path
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        deps: set[str] = set()
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                subs = {f"{node.module}.{alias.name}" for alias in node.names} & paths.keys()
                deps |= subs
                if len(subs) < len(node.names):
                    deps.add(node.module)
            elif isinstance(node, ast.Import):
                deps |= {alias.name for alias in node.names}
        # a parent package is always importing already: not an edge
        graph[name] = {
            dep for dep in deps if dep in paths and dep != name and not name.startswith(dep + ".")
        }
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for dep in sorted(graph[node]):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_the_imports() -> None:
    graph = module_graph()
    assert "limitor.limiter" in graph["limitor.base"]
    assert "limitor.backends.base" in graph["limitor.limiter"]


def test_no_module_level_import_cycle() -> None:
    assert cycles(module_graph()) == []


def test_a_cycle_would_be_found() -> None:
    graph = module_graph()
    graph["limitor.limiter"] = graph["limitor.limiter"] | {"limitor.base"}
    assert ["limitor.base", "limitor.limiter"] in cycles(graph)


def test_the_leaves_import_no_layer_above() -> None:
    graph = module_graph()
    assert "limitor.base" not in graph["limitor.limiter"]
    assert not {dep for dep in graph["limitor.results"] if dep.startswith("limitor.engines")}
    assert graph["limitor.engines._base"] <= {"limitor._decision"}
