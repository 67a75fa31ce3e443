"""The environments the workers run in: found interpreters and cached virtualenvs.

limitor 0.6 is installed under the same package name as ours, so it gets a virtualenv of
its own. Virtualenvs live in ``benchmarks/.venvs/`` (or ``$LIMITOR_BENCH_VENVS``) and are
rebuilt only when their interpreter, their requirements or ``pyproject.toml`` change.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENVS = Path(os.environ.get("LIMITOR_BENCH_VENVS", ROOT / "benchmarks" / ".venvs"))

PEERS = (
    "aiolimiter==1.3.0",
    "limits[redis]==5.8.0",
    "pyrate-limiter==4.5.1",
    "throttled-py[redis]==3.5.0",
    "redis>=5",
    "trio>=0.22",  # the total section's virtual clock (trio.testing.MockClock)
)
OPTIONAL_PEERS = ("token-throttle==14.0.0",)
"""Installed one by one after the rest; a failure leaves a "not installed" row, no error."""
LIMITOR_06 = ("limitor==0.6.0",)


@dataclass
class Env:
    """One interpreter with what a set of workers needs installed."""

    name: str
    python: str
    """The base interpreter (the venv is made from it) or, without a venv, the one used."""
    requirements: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    editable: bool = False
    """Install this repository's limitor editable (``pip install -e``)."""
    venv: bool = True
    version: str = ""

    @property
    def path(self) -> Path:
        return VENVS / self.name

    @property
    def executable(self) -> str:
        if not self.venv:
            return self.python
        return str(self.path / ("Scripts/python.exe" if os.name == "nt" else "bin/python"))


def python_version(python: str) -> tuple[int, int, int] | None:
    """``(major, minor, micro)`` of an interpreter, or None if it does not run."""
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print(list(sys.version_info[:3]))"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    major, minor, micro = json.loads(out)
    return major, minor, micro


def find_python(minimum: tuple[int, int] = (3, 12), prefer: tuple[int, int] = (3, 12)):  # type: ignore[no-untyped-def]
    """An interpreter of at least ``minimum``: ``prefer`` if there is one, else the newest.

    Looks at the running interpreter, ``python3.X`` on ``PATH`` and pyenv's versions.
    Returns ``(path, version)`` or None.
    """
    candidates = [sys.executable]
    for minor in range(minimum[1], minimum[1] + 6):
        found = shutil.which(f"python{minimum[0]}.{minor}")
        if found:
            candidates.append(found)
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(glob.glob(str(pyenv / "versions" / "3.*" / "bin" / "python3")))
    best = None
    for candidate in candidates:
        version = python_version(candidate)
        if version is None or version[:2] < minimum:
            continue
        key = (version[:2] == prefer, version)
        if best is None or key > best[0]:
            best = (key, candidate, version)
    if best is None:
        return None
    return best[1], ".".join(map(str, best[2]))


def _stamp(env: Env) -> str:
    parts = [env.python, env.version, *env.requirements, *env.optional, str(env.editable)]
    if env.editable:
        parts.append((ROOT / "pyproject.toml").read_text())
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def ensure(env: Env, log=print) -> None:  # type: ignore[no-untyped-def]
    """Create or update ``env``'s virtualenv (a no-op when its stamp is unchanged)."""
    if not env.venv:
        return
    stamp_file = env.path / ".bench-stamp"
    stamp = _stamp(env)
    if stamp_file.exists() and stamp_file.read_text() == stamp and Path(env.executable).exists():
        return
    log(f"preparing environment {env.name} ({env.path}) ...")
    shutil.rmtree(env.path, ignore_errors=True)
    env.path.parent.mkdir(parents=True, exist_ok=True)
    _quiet([env.python, "-m", "venv", str(env.path)])
    pip = [env.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    if env.requirements:
        _quiet([*pip, *env.requirements])
    if env.editable:
        _quiet([*pip, "-e", str(ROOT)])
    for requirement in env.optional:
        if not try_install(env, requirement):
            log(f"  optional {requirement} could not be installed: its rows will say so")
    stamp_file.write_text(stamp)


def _quiet(command: list[str]) -> None:
    """Run ``command``; show its output only if it fails."""
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        print(result.stdout + result.stderr, file=sys.stderr)
        raise subprocess.CalledProcessError(result.returncode, command)


def try_install(env: Env, requirement: str) -> bool:
    """Install one optional package into ``env``; False (not an error) if it fails."""
    result = subprocess.run(
        [env.executable, "-m", "pip", "install", "--quiet", requirement],
        capture_output=True,
        text=True,
    )
    return result.returncode == 0
