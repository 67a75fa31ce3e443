"""The command line: `python -m limitor demo` and `python -m limitor simulate`."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import pytest

from limitor.__main__ import arrivals_for, main, most_in_window, simulate
from limitor.configs import BucketConfig
from limitor.errors import ConfigError
from limitor.testing import FakeClock


def test_demo_in_virtual_time_shows_each_algorithm_keeping_the_schedule() -> None:
    out = io.StringIO()
    assert main(["demo", "--virtual", "--calls", "6", "--rate", "5", "--burst", "2"], out) == 0
    text = out.getvalue()
    for name in (
        "leaky bucket",
        "token bucket",
        "GCRA (virtual scheduling)",
        "GCRA (leaky bucket form)",
    ):
        assert name in text
    offsets = [float(m) for m in re.findall(r"call +\d+ +\+ *([\d.]+) s", text)]
    assert offsets == pytest.approx([0, 0, 0.2, 0.4, 0.6, 0.8] * 4)
    tasks = [float(m) for m in re.findall(r"task +\d+ +\+ *([\d.]+) s", text)]
    assert tasks == pytest.approx([0, 0, 0.2, 0.4, 0.6, 0.8])


def test_demo_returns_the_time_it_took_on_its_clock() -> None:
    from limitor.__main__ import demo

    clock = FakeClock()
    assert demo(10, 5.0, 4, out=io.StringIO(), clock=clock) == pytest.approx(4 * 1.2 + 0.8)


def test_the_live_demo_runs_as_a_module_quickly() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "limitor", "demo", "--calls", "4", "--rate", "50", "--burst", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("call  4") == 4


def test_simulate_reports_admitted_delayed_and_rejected() -> None:
    out = io.StringIO()
    argv = [
        "simulate",
        "--rate",
        "10/s",
        "--burst",
        "5",
        "--arrivals",
        "burst",
        "--arrival-rate",
        "20",
        "--duration",
        "1",
    ]
    assert main(argv, out) == 0
    text = out.getvalue()
    assert re.search(r"admitted +20 +\(100\.0%\)", text)
    assert re.search(r"delayed +15 ", text)
    assert "busiest second: 15 units (the limit allows rate + burst = 15)" in text


def test_simulate_police_mode_rejects() -> None:
    result = simulate(BucketConfig(10, 1, burst=5), [0.0] * 20, police=True)
    assert (result["admitted"], result["rejected"], result["delayed"]) == (5, 15, 0)
    timed = simulate(BucketConfig(10, 1, burst=5), [0.0] * 20, timeout=0.5)
    assert (timed["admitted"], timed["rejected"]) == (10, 10)
    assert timed["wait_max"] == pytest.approx(0.5)


def test_simulated_poisson_arrivals_respect_the_limit() -> None:
    arrivals = arrivals_for("poisson", 50.0, 30.0, seed=7)
    assert 1300 < len(arrivals) < 1700
    result = simulate(BucketConfig(20, 1, burst=4), arrivals, algorithm="gcra")
    assert result["most_in_one_second"] <= 24
    assert result["admitted"] == len(arrivals)


def test_arrival_patterns_and_windows() -> None:
    assert arrivals_for("uniform", 4, 1, 0) == [0, 0.25, 0.5, 0.75]
    assert arrivals_for("burst", 3, 1, 0) == [0.0, 0.0, 0.0]
    with pytest.raises(ConfigError):
        arrivals_for("bursty", 1, 1, 0)
    assert most_in_window([0, 0.5, 1.0, 1.01, 3], 1.0) == 3
    assert most_in_window([], 1.0) == 0


def test_bad_rates_exit_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--rate", "lots"], io.StringIO()) == 2
    assert "error: rate must look like" in capsys.readouterr().err
