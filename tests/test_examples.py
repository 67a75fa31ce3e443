"""The examples run, and print what they say they print.

Every ``examples/*.py`` (except files starting with ``_``) runs in a subprocess with the
interpreter running the tests; a new example is picked up automatically. The
documentation's code blocks are run and their printed output checked by
``tests/test_docs.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))
TIMEOUT = 60  # seconds; each example takes a few at most

# Lines an example must print (a new example needs no entry: it must exit 0 and print).
EXPECTED: dict[str, list[str]] = {
    "sync_decorator.py": [
        "fetch page 8",
        "admitted 8, 5 waited",
        "third ping refused at once: retry after 0.50 s",
    ],
    "async_decorator.py": ["asyncio:", "task 6 got 'reply 6'", "one limiter for both loops"],
    "per_user.py": [
        "user 1 called at +1.0",
        "three clients, three buckets: no waiting",
        "4 users, all refilling: users=3 overflows=1",
        "eve arrives: users=3 evictions=1",
    ],
    "hostile_traffic.py": [
        "buckets held: 1000 (never more than 1000)",
        "the most any client was served: 2 (its burst: 2)",
        "status codes: [200, 429, 429]",
        "status codes: [200, 200, 429, 429, 429, 429]",
    ],
    "policing_http.py": [
        "429 too many requests, retry in 0.33 s",
        "RateLimit-Remaining: 0, RateLimit-Reset: 1, Retry-After: 1",
        "429 too many searches",
    ],
    "reservations.py": [
        "cancel third:  gives back 1",
        "goes after 0.5 s, in third's hole",
        "cancel it and fourth: gives back 2",
        "the next goes after 0.5 s",
        "waited: the clock now reads 0.5 s",
        "the next caller pays the debt: it waits 1.9 s",
    ],
    "context_managers.py": ["tokens left", "never more than 2 at once"],
    "many_event_loops.py": [
        "24 calls from 3 event loops",
        ": kept",
        "bodies ran at once (max_concurrent=2)",  # 1 or 2: real threads, timing decides
    ],
    "testing_with_fake_clock.py": ["tests passed in virtual time"],
    "llm_transport.py": ["40 calls, 3720 tokens in 30.7 virtual seconds", "429s met: 0"],
    "llm_fake_client.py": [
        "t=  20.00s",  # RPM binds
        "t= 110.00s",  # TPM binds
        "tokens left right after the call: 4,900",  # refunded at once
        "t= 251.50s",  # debt delays the next call
        "requests left: 3 before, 3 after",  # refused by tokens, no request taken
        "the limiter now says 500",  # headers tighten
        "AcquireTimeout: retry after",
    ],
}


def run_python(source: Path | str, name: str) -> subprocess.CompletedProcess[str]:
    """Run a file, or a script given as text, in a fresh interpreter from the repository."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONWARNINGS"] = "error"
    args = [str(source)] if isinstance(source, Path) else ["-c", source]
    result = subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path: Path) -> None:
    result = run_python(path, path.name)
    assert result.stdout.strip(), f"{path.name} printed nothing"
    for line in EXPECTED.get(path.name, []):
        assert line in result.stdout, f"{path.name} did not print {line!r}:\n{result.stdout}"


def test_every_example_says_how_to_run_it() -> None:
    assert EXAMPLES, "no examples found"
    for path in EXAMPLES:
        source = path.read_text(encoding="utf-8")
        assert source.startswith('"""'), f"{path.name} has no module docstring"
        assert f"python examples/{path.name}" in source, f"{path.name} does not say how to run"
