"""The benchmark runner starts and prints its table quickly.

Runs ``python -m benchmarks --quick`` (the floor and limitor only, in this interpreter,
no installs) in a subprocess. The figures themselves are not checked: the benchmark is
not part of the suite's pass/fail, only that it works.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROW = re.compile(r"^\s+(floor|limitor)\s+.+?\s(\d+(?:\.\d+)?) us\s+(\d+\.\d+)(?:\s|$)")


def test_quick_run_prints_a_table_with_floor_and_limitor_ratios(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Uncontended overhead" in result.stdout
    rows: dict[str, list[float]] = {"floor": [], "limitor": []}
    for line in result.stdout.splitlines():
        match = ROW.match(line)
        if match:
            rows[match.group(1)].append(float(match.group(3)))
    assert rows["floor"], result.stdout
    assert rows["limitor"], result.stdout
    assert all(math.isfinite(ratio) and ratio > 0 for ratio in rows["floor"] + rows["limitor"])
    written = json.loads((tmp_path / "latest-quick.json").read_text())
    libraries = {record["library"] for record in written["records"] if record["ref"]}
    assert {"floor", "limitor"} <= libraries
    assert (tmp_path / "latest-quick.md").read_text().startswith("# limitor benchmark results")
