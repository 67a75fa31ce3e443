"""docs/architecture.md's module map names every module of the package, and only those.

The map is kept by hand (a sentence per module says its one job); this test keeps it true
to the code: a module added, moved or removed without the map fails here, naming it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "limitor"
PAGE = ROOT / "docs" / "architecture.md"


def modules_in_the_package() -> set[str]:
    names = set()
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.add(".".join(parts))
    return names


def modules_on_the_map() -> set[str]:
    text = PAGE.read_text(encoding="utf-8")
    start = text.index("## Module map")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else len(text)]
    return set(re.findall(r"^\| `(limitor(?:\.[A-Za-z_][A-Za-z0-9_]*)*)` \|", section, re.M))


def test_the_module_map_names_every_module_and_only_those() -> None:
    in_package, on_map = modules_in_the_package(), modules_on_the_map()
    assert in_package - on_map == set(), "modules missing from docs/architecture.md"
    assert on_map - in_package == set(), "docs/architecture.md names modules that do not exist"


def test_the_map_lists_each_module_once() -> None:
    text = PAGE.read_text(encoding="utf-8")
    section = text[text.index("## Module map") :]
    rows = re.findall(r"^\| `(limitor[A-Za-z0-9_.]*)` \|", section, re.M)
    assert len(rows) == len(set(rows))


# -- rooms a newcomer can read (issue 21) -------------------------------------------------


def _sources() -> list[tuple[str, str]]:
    return [
        (".".join(path.relative_to(ROOT).with_suffix("").parts), path.read_text(encoding="utf-8"))
        for path in sorted(PACKAGE.rglob("*.py"))
    ]


def test_no_module_is_over_500_lines() -> None:
    long = {name: text.count("\n") for name, text in _sources() if text.count("\n") > 500}
    assert long == {}


def test_no_function_is_over_80_lines() -> None:
    long = {}
    for name, text in _sources():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                span = (node.end_lineno or node.lineno) - node.lineno + 1
                if span > 80:
                    long[f"{name}.{node.name}"] = span
    assert long == {}


def _import_time_statements(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The imports run when a module is imported: its body's, and in its ``if``/``try``
    blocks (not under ``TYPE_CHECKING``); a function's imports run when it is called."""
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        elif isinstance(node, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(node.test):
                yield from _import_time_statements(node.body)
            yield from _import_time_statements(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _import_time_statements(block)
            for handler in node.handlers:
                yield from _import_time_statements(handler.body)


def _imports_at_run_time(name: str, text: str) -> set[str]:
    """The package modules ``name`` imports when it is imported."""
    found: set[str] = set()
    package = name.removesuffix(".__init__") if name.endswith("__init__") else name
    package = package if name.endswith("__init__") else package.rsplit(".", 1)[0]
    for node in _import_time_statements(ast.parse(text).body):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            parts = package.split(".")
            parent = parts[: len(parts) - node.level + 1]
            base = ".".join([*parent, base] if base else parent)
        found.add(base)
        found.update(f"{base}.{alias.name}" for alias in node.names)
    return {module for module in found if module.startswith("limitor")}


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports when imported (``a.b`` for ``a/b/__init__``).

    A module's import of an enclosing package is left out: Python has initialised (or is
    initialising) that package before the module runs.
    """
    sources = dict(_sources())
    modules = {name.removesuffix(".__init__") for name in sources}
    graph: dict[str, set[str]] = {}
    for name, text in sources.items():
        me = name.removesuffix(".__init__")
        targets = _imports_at_run_time(name, text) & modules
        graph[me] = {t for t in targets if t != me and not me.startswith(t + ".")}
    return graph


def cycles_of(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each module that can reach itself, with one path back to it."""
    cycles = []
    for start in sorted(graph):
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in sorted(graph.get(node, ())):
                if nxt == start:
                    cycles.append([*path, start])
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    return cycles


def test_no_import_cycle() -> None:
    graph = import_graph()
    assert "limitor.engines.schedule" in graph["limitor.backends.memory._store"]  # it reads
    assert cycles_of(graph) == []
    graph["limitor.engines.schedule"].add("limitor.backends.memory._store")  # and it sees one
    assert cycles_of(graph) != []
