"""docs/architecture.md's module map names every module of the package, and only those.

The map is kept by hand (a sentence per module says its one job); this test keeps it true
to the code: a module added, moved or removed without the map fails here, naming it.
"""

from __future__ import annotations

import re
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
