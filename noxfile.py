"""Development sessions: ``nox -s tests``, ``floors``, ``lint``, ``typecheck``, ``docs``,
``bench``.

``floors`` runs the tests on the lowest dependency versions pyproject.toml allows.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "typecheck"]
nox.options.reuse_existing_virtualenvs = True

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the test suite."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(python=[PYTHONS[0], PYTHONS[-1]], venv_backend="uv")
def floors(session: nox.Session) -> None:
    """Run the test suite on the lowest dependency versions pyproject.toml allows.

    uv resolves every direct dependency (the runtime ones and the ``test`` extra) to its
    floor, on the oldest and the newest supported Python: what ``.ci/run`` checks.
    """
    session.install("--resolution", "lowest-direct", "-e", ".[test]")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff lint and format checks."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict on the package."""
    session.install("-e", ".[dev]")
    session.run("mypy", "--strict", "limitor")
    session.run("mypy", "--strict", "tests/typing")


@nox.session
def docs(session: nox.Session) -> None:
    """Build the Sphinx docs with warnings as errors (into docs/_build/html)."""
    session.install("-e", ".[docs]")
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")


@nox.session(venv_backend="none")
def bench(session: nox.Session) -> None:
    """Benchmarks against limitor 0.6 and the peers (not part of the tests).

    The runner needs only the standard library: it builds its own environments under
    benchmarks/.venvs/. Pass options after ``--``, e.g. ``nox -s bench -- --quick``.
    """
    session.run("python3", "-m", "benchmarks", *session.posargs, external=True)
