"""A worker: runs one section for one library inside one environment, writes JSON.

The coordinator starts it as ``python -c BOOTSTRAP spec.json`` with a neutral working
directory, and the bootstrap *appends* the repository root to ``sys.path``: the
environment's own ``limitor`` (limitor 0.6 in its environment) is found first, and the
benchmark package is still importable.
"""

from __future__ import annotations

import importlib
import json
import platform
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

BOOTSTRAP = (
    "import sys; sys.path.append({root!r}); "
    "from benchmarks.worker import main; sys.exit(main(sys.argv[1:]))"
)

SECTION_MODULES = {"redis": "redis_bench"}
"""Section names whose module is named otherwise (``redis`` would shadow redis-py)."""


def describe(library: Any) -> dict[str, Any]:
    """The interpreter and the versions (and, for limitor, the location) actually used."""
    versions: dict[str, str] = {}
    for distribution in library.DISTRIBUTIONS:
        try:
            versions[distribution] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            versions[distribution] = ""
    meta: dict[str, Any] = {
        "library": library.LIBRARY,
        "python": platform.python_version(),
        "executable": sys.executable,
        "versions": versions,
    }
    if "limitor" in library.DISTRIBUTIONS and versions.get("limitor"):
        import limitor

        meta["limitor_path"] = str(Path(limitor.__file__).resolve().parent)
    return meta


def main(argv: list[str]) -> int:
    spec_path = Path(argv[0])
    spec = json.loads(spec_path.read_text())
    library = importlib.import_module(f"benchmarks.libraries.{spec['library']}")
    module = SECTION_MODULES.get(spec["section"], spec["section"])
    section = importlib.import_module(f"benchmarks.sections.{module}")
    meta = describe(library)
    missing = [name for name, version in meta["versions"].items() if not version]
    started = time.perf_counter()
    if missing:
        records = [
            {
                "section": section.SECTION,
                "measure": "",
                "library": library.LIBRARY,
                "algorithm": "",
                "value": None,
                "unit": "",
                "ref": None,
                "samples": [],
                "ratios": [],
                "status": "not installed",
                "note": ", ".join(missing),
            }
        ]
    else:
        records = section.run(library, spec)
    meta["seconds"] = time.perf_counter() - started
    Path(spec["out"]).write_text(json.dumps({"meta": meta, "records": records}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
