"""The command line: `limitor demo` and `limitor simulate` (also `python -m limitor`)."""

from __future__ import annotations

import io
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from limitor import __main__ as cli
from limitor.__main__ import demo, demo_seconds, main, sparkline
from limitor.testing import FakeClock

# -- a small fixed trace, and what it must give -----------------------------------------
#
# Limit 2/s with bursts of 2 (one unit every 0.5 s), shared by keys a and b; every call
# waits its turn (GCRA's rule: a call goes at max(arrival, TAT - burst/rate + 1/rate), and
# TAT moves 0.5 s on from max(TAT, that time)):
#
#   call  arrives  key  goes   waits   TAT after
#   1     0        a    0      0       0.5
#   2     0        b    0      0       1.0
#   3     0        a    0.5    0.5     1.5
#   4     0.25     a    1.0    0.75    2.0
#   5     1.0      b    1.5    0.5     2.5
#   6     1.0      a    2.0    1.0     3.0
#
# Sorted waits 0, 0, 0.5, 0.5, 0.75, 1.0: nearest-rank p50 is the 3rd (0.5), p90 and p99
# the 6th (1.0); 4 of 6 delayed (66.7%); 6 units from t=0 to the last admission at 2.0 s
# is 3 units/s; the busiest closed 1 s window [0, 1] holds the admissions at 0, 0, 0.5 and
# 1.0: 4 units, exactly the bound burst + rate*1 = 2 + 2. Key a: 4 calls, waits 0, 0.5,
# 0.75, 1.0 (mean 0.5625, max 1); key b: 2 calls, waits 0 and 0.5.
# The timeline: 2 s in intervals of 2**-10 s doubles to 1/32 s (65 intervals), merged in
# pairs to fit 64 columns: 1/16 s per column, 33 columns up to 2.0625 s. Arrivals: 3 at
# column 0, 1 at column 4 (0.25 s), 2 at column 16 (1 s); admissions: 2 at column 0, 1 at
# columns 8, 16, 24 and 32. Heights are ceil(value / 3 * 8) eighths: 3 -> 8, 2 -> 6, 1 -> 3.

TRACE = "time,amount,key\n0,1,a\n0,1,b\n0,1,a\n0.25,1,a\n1.0,1,b\n1.0,1,a\n"

GOLDEN_TEXT = """\
limit 2/s, burst 2, leaky_bucket, wait
arrivals: trace {path}; 6 calls (virtual time)

  admitted         6  (100.0%)
  delayed          4  ( 66.7%)
  rejected         0  (  0.0%)
  wait      p50 0.500 s  p90 1.000 s  p99 1.000 s  max 1.000 s
  achieved  3.000 units/s from the first arrival to the last admission (the limit: 2/s)
  busiest 1 s: 4 units (the bound burst + rate*w: 4)
  keys      2, the busiest:
    a                  4 calls        4 admitted        0 rejected  wait max 1.000 s
    b                  2 calls        2 admitted        0 rejected  wait max 0.500 s

timeline: units per 0.0625 s, from 0 s to 2.062 s (full height 3)
  arrived  |█   ▃           ▆                |
  admitted |▆       ▃       ▃       ▃       ▃|
"""

# The same trace policed (--mode raise): calls 1 and 2 take the burst; call 3 (t=0) finds
# it empty; at t=0.25 only 0.5 unit has drained, call 4 is refused too; by t=1 the bucket
# is empty again and calls 5 and 6 go. 4 units from 0 to 1 s: 4 units/s; the window [0, 1]
# holds all 4 (the bound, 4). Key a: calls 1, 3, 4, 6 -> 2 admitted, 2 refused.
GOLDEN_JSON_POLICED = {
    "arrivals": "trace {path}",
    "limit": "2/s, burst 2",
    "rate": 2.0,
    "burst": 2.0,
    "algorithm": "leaky_bucket",
    "mode": "raise",
    "timeout": None,
    "per_key": False,
    "calls": 6,
    "admitted": 4,
    "delayed": 0,
    "rejected": 2,
    "too_large": 0,
    "units_arrived": 6.0,
    "units_admitted": 4.0,
    "wait": {"p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0, "mean": 0.0, "exact": True},
    "first_arrival": 0.0,
    "last_arrival": 1.0,
    "last_admission": 1.0,
    "achieved_rate": 4.0,
    "limits": [
        {
            "unit": "units",
            "rate": 2.0,
            "burst": 2.0,
            "achieved": 4.0,
            "window": 1.0,
            "most": 4.0,
            "bound": 4.0,
            "start": 0.0,
            "key": None,
        }
    ],
    "keys": {
        "a": {
            "calls": 4,
            "admitted": 2,
            "delayed": 0,
            "rejected": 2,
            "units": 2.0,
            "wait_mean": 0.0,
            "wait_max": 0.0,
        },
        "b": {
            "calls": 2,
            "admitted": 2,
            "delayed": 0,
            "rejected": 0,
            "units": 2.0,
            "wait_mean": 0.0,
            "wait_max": 0.0,
        },
    },
}


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    path = tmp_path / "trace.csv"
    path.write_text(TRACE, encoding="utf-8")
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    out = io.StringIO()
    status = main(argv, out)
    return status, out.getvalue(), capsys.readouterr().err


def test_golden_terminal_summary(trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(
        ["simulate", "--trace", str(trace), "--rate", "2/s", "--burst", "2"], capsys
    )
    assert (status, err) == (0, "")
    assert out == GOLDEN_TEXT.format(path=trace)


def test_golden_json_policed(trace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "simulate",
        "--trace",
        str(trace),
        "--rate",
        "2/s",
        "--burst",
        "2",
        "--mode",
        "raise",
        "--json",
    ]
    status, out, err = run(argv, capsys)
    assert (status, err) == (0, "")
    expected = json.loads(json.dumps(GOLDEN_JSON_POLICED).replace("{path}", str(trace)))
    assert json.loads(out) == expected


def test_json_of_the_waiting_run_has_the_hand_derived_waits(
    trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(
        ["simulate", "--trace", str(trace), "--rate", "2/s", "--burst", "2", "--json"], capsys
    )
    assert status == 0
    data = json.loads(out)
    assert data["wait"] == {
        "p50": 0.5,
        "p90": 1.0,
        "p99": 1.0,
        "max": 1.0,
        "mean": 2.75 / 6,
        "exact": True,
    }
    assert data["keys"]["a"]["wait_mean"] == 0.5625
    assert data["keys"]["b"]["delayed"] == 1
    assert (data["last_admission"], data["achieved_rate"]) == (2.0, 3.0)


def test_a_jsonl_trace_with_timestamps_gives_the_same_result(
    tmp_path: Path, trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        '{"time": "2026-01-01T00:00:00Z", "amount": 1, "key": "a"}',
        '{"time": "2026-01-01T00:00:00Z", "amount": 1, "key": "b"}',
        '["2026-01-01T00:00:00Z", 1, "a"]',
        "",
        '{"time": "2026-01-01T00:00:00.250Z", "key": "a"}',
        '{"time": "2026-01-01T00:00:01Z", "tokens": 1, "key": "b"}',
        '{"t": "2026-01-01T00:00:01+00:00", "amount": 1, "user": "a"}',
    ]
    path = tmp_path / "trace.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    _, from_csv, _ = run(
        ["simulate", "--trace", str(trace), "--rate", "2/s", "--burst", "2", "--json"], capsys
    )
    status, from_jsonl, _ = run(
        ["simulate", "--trace", str(path), "--rate", "2/s", "--burst", "2", "--json"], capsys
    )
    assert status == 0
    a, b = json.loads(from_csv), json.loads(from_jsonl)
    del a["arrivals"], b["arrivals"]
    assert a == b


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.csv", "time,amount\n0,1\n1,2,3\n", "line 3: malformed line: 3 fields"),
        ("bad.csv", "time,amount\n0,1\n5 parsecs,1\n", "line 3: unknown unit 'parsecs'"),
        ("bad.csv", "time,amount\n0,-1\n", "line 2: amount '-1' must be a finite number"),
        ("bad.csv", "time,amount\n0,1\n1,nan\n", "line 3: amount 'nan' must be a finite"),
        ("bad.csv", "time,amount\n0,1\n1,lots\n", "line 3: amount 'lots' is not a number"),
        ("bad.csv", "time,amount\n2,1\n1,1\n", "line 3: time goes backwards: 1 s after 2 s"),
        ("bad.csv", "when,amount\n2,1\n", "line 1: the header needs a time column"),
        ("bad.csv", "time\n0\nyesterday\n", "line 3: time 'yesterday' is neither"),
        ("bad.jsonl", '{"time": 0}\n{"time": 1\n', "line 2: malformed line, not JSON"),
        ("bad.jsonl", '{"time": 0}\n\n{"amount": 1}\n', "line 3: no time field"),
        ("bad.jsonl", '{"time": 1}\n{"time": 0.5}\n', "line 2: time goes backwards"),
        ("bad.jsonl", '{"time": 0, "amount": NaN}\n', "line 1: amount nan must be"),
        ("bad.jsonl", '"hello"\n', "line 1: malformed line: expected an object"),
    ],
)
def test_a_bad_trace_is_one_line_with_its_line_number(
    tmp_path: Path, name: str, text: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    status, out, err = run(["simulate", "--trace", str(path)], capsys)
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1, err
    assert re.fullmatch(r"[\w -]+: error: " + re.escape(message) + r".*\n", err), err


def test_a_csv_trace_saved_with_a_byte_order_mark(
    tmp_path: Path, trace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    excel = tmp_path / "excel.csv"
    excel.write_bytes(b"\xef\xbb\xbf" + TRACE.replace("\n", "\r\n").encode())
    _, plain, _ = run(["simulate", "--trace", str(trace), "--json"], capsys)
    status, bom, err = run(["simulate", "--trace", str(excel), "--json"], capsys)
    assert (status, err) == (0, "")
    a, b = json.loads(plain), json.loads(bom)
    del a["arrivals"], b["arrivals"]
    assert a == b


def test_a_trace_that_is_not_text_or_not_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = tmp_path / "trace.csv"
    binary.write_bytes(b"time\n\xff\xfe\x00\n")
    for path in (binary, tmp_path / "missing.csv", tmp_path):
        status, _, err = run(["simulate", "--trace", str(path)], capsys)
        assert status == 2
        assert err.count("\n") == 1, err
        assert "Traceback" not in err


BAD_VALUES = [
    ["simulate", "--arrival-rate", "0"],
    ["simulate", "--arrival-rate", "-3"],
    ["simulate", "--arrival-rate", "nan"],
    ["simulate", "--arrival-rate", "inf"],
    ["simulate", "--duration", "nan"],
    ["simulate", "--duration", "inf"],
    ["simulate", "--duration", "1e9"],
    ["simulate", "--duration", "-5"],
    ["simulate", "--arrivals", "uniform", "--arrival-rate", "1e9", "--duration", "1e3"],
    ["simulate", "--arrivals", "burst", "--arrival-rate", "1e12"],
    ["simulate", "--amount", "-1"],
    ["simulate", "--amount", "nan"],
    ["simulate", "--amount", "inf"],
    ["simulate", "--amount", "5:1"],
    ["simulate", "--timeout", "-1"],
    ["simulate", "--timeout", "nan"],
    ["simulate", "--burst", "0.5"],
    ["simulate", "--burst", "0"],
    ["simulate", "--rate", "lots"],
    ["simulate", "--rate", "10/parsec"],
    ["simulate", "--rate", "1e400/s"],
    ["simulate", "--rate", "0/s"],
    ["simulate", "--mode", "timeout"],
    ["simulate", "--mode", "raise", "--timeout", "1"],
    ["simulate", "--window", "0"],
    ["simulate", "--depth", "2", "--arrivals", "daily"],
    ["simulate", "--keys", "-1"],
    ["simulate", "--seed", "x"],
    ["simulate", "--tokens-per-minute", "100", "--rate", "1/s"],
    ["simulate", "--tokens-per-minute", "100", "--amount", "500"],
    ["simulate", "--plot", "out.pdf"],
    ["simulate", "--max-arrivals", "0"],
    ["simulate", "--frobnicate"],
    ["demo", "--calls", "-3"],
    ["demo", "--calls", "0"],
    ["demo", "--rate", "0"],
    ["demo", "--rate", "nan"],
    ["demo", "--burst", "0"],
    ["demo", "--calls", "1000", "--rate", "0.5"],  # would take over half an hour, live
    [],
]


@pytest.mark.parametrize("argv", BAD_VALUES, ids=" ".join)
def test_every_bad_value_is_refused_in_one_line_with_status_2(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(argv, capsys)
    assert status == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert ": error: " in lines[-1]
    assert "Traceback" not in err


def test_rates_with_exponents_are_accepted(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "simulate",
        "--rate",
        "1e3/s",
        "--arrivals",
        "uniform",
        "--arrival-rate",
        "2000",
        "--duration",
        "2",
        "--json",
    ]
    status, out, _ = run(argv, capsys)
    assert status == 0
    data = json.loads(out)
    assert (data["rate"], data["burst"], data["calls"]) == (1000.0, 1000.0, 4000)
    assert data["limits"][0]["most"] <= data["limits"][0]["bound"] == 2000.0


def test_the_gcra_burst_counts_only_real_delays(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "simulate",
        "--rate",
        "600/minute",
        "--burst",
        "20",
        "--algorithm",
        "gcra",
        "--arrivals",
        "burst",
        "--arrival-rate",
        "100",
        "--duration",
        "1",
    ]
    status, out, _ = run(argv, capsys)
    assert status == 0
    assert re.search(r"delayed +80 +\( 80\.0%\)", out)  # not 81: a 4.4e-16 s residue is no wait
    assert "busiest 1 s: 30 units (the bound burst + rate*w: 30)" in out


def test_llm_limits_per_key(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "simulate",
        "--requests-per-minute",
        "30",
        "--tokens-per-minute",
        "20000",
        "--amount",
        "100:2000",
        "--arrival-rate",
        "2",
        "--duration",
        "120",
        "--keys",
        "3",
        "--per-key",
        "--json",
    ]
    status, out, _ = run(argv, capsys)
    assert status == 0
    data = json.loads(out)
    assert data["per_key"] is True
    assert [limit["unit"] for limit in data["limits"]] == ["requests", "tokens"]
    assert set(data["keys"]) == {"user0", "user1", "user2"}
    for limit in data["limits"]:
        assert limit["most"] <= limit["bound"] + 1e-6


def test_plots_are_written_and_transparent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    svg, png = tmp_path / "out.svg", tmp_path / "out.png"
    for path in (svg, png):
        status, out, err = run(
            ["simulate", "--duration", "10", "--mode", "raise", "--plot", str(path)], capsys
        )
        assert (status, err) == (0, "")
        assert f"plot written to {path}" in out
    assert "<svg" in svg.read_text(encoding="utf-8")
    header = png.read_bytes()[:26]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert header[25] == 6  # colour type 6: RGBA, a transparent background


def test_a_missing_matplotlib_is_one_line_naming_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    status, out, err = run(["simulate", "--plot", str(tmp_path / "out.png")], capsys)
    assert status == 2
    assert out == ""  # said before the work, not after it
    assert "pip install 'limitor[plot]'" in err
    assert err.count("\n") == 1


def test_no_progress_bar_without_a_terminal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "PROGRESS_FROM", 10)
    status, _, err = run(["simulate", "--duration", "30"], capsys)
    assert (status, err) == (0, "")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_progress_bar_on_a_terminal_for_long_runs_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import tqdm  # noqa: F401 (the optional `progress` extra, also in the test extra)

    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["simulate", "--duration", "10"], io.StringIO()) == 0
    assert terminal.getvalue() == ""  # 120 calls: too short for a bar
    monkeypatch.setattr(cli, "PROGRESS_FROM", 100)
    assert (
        main(
            ["simulate", "--arrival-rate", "10000", "--duration", "10", "--mode", "raise"],
            io.StringIO(),
        )
        == 0
    )
    assert "calls" in terminal.getvalue()
    monkeypatch.setitem(sys.modules, "tqdm", None)  # not installed: nothing, no error
    quiet = _Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    assert (
        main(
            ["simulate", "--arrival-rate", "10000", "--duration", "10", "--mode", "raise"],
            io.StringIO(),
        )
        == 0
    )
    assert quiet.getvalue() == ""


def test_sparkline_scales_and_never_hides_a_little() -> None:
    assert sparkline([0, 1, 4, 8], 8) == " ▁▄█"
    assert sparkline([0, 0.01, 8], 8) == " ▁█"
    assert sparkline([0, 8], 8, ascii_only=True) == " @"


# -- demo --------------------------------------------------------------------------------


def test_demo_in_virtual_time_shows_each_algorithm_keeping_the_schedule(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, text, _ = run(
        ["demo", "--virtual", "--calls", "6", "--rate", "5", "--burst", "2"], capsys
    )
    assert status == 0
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


def test_the_demo_states_its_real_length_and_its_header_says_what_it_does() -> None:
    out = io.StringIO()
    took = demo(10, 5.0, 4, out=out, clock=FakeClock())
    # per algorithm the 6 calls after the burst of 4 wait 0.2 s each; then 4 async tasks
    assert took == pytest.approx(4 * 1.2 + 0.8) == demo_seconds(10, 5.0, 4)
    text = out.getvalue()
    assert text.startswith("limitor demo: one thread makes 10 calls back to back against 5")
    assert "at once against" not in text  # the calls are made one after another
    assert "About 5.6 s in all." in text
    assert text.rstrip().endswith("the demo took 5.6 s")


def _limitor(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "limitor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **kwargs,
    )  # type: ignore[call-overload]


def test_the_live_demo_runs_as_a_module_quickly() -> None:
    result = _limitor("demo", "--calls", "4", "--rate", "50", "--burst", "2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("call  4") == 4


def test_help_names_the_program_as_it_was_started() -> None:
    result = _limitor("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: python -m limitor ")
    script = Path(sys.executable).parent / ("limitor.exe" if sys.platform == "win32" else "limitor")
    assert script.exists(), "the `limitor` console script is installed with the package"
    installed = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    assert installed.returncode == 0
    assert installed.stdout.startswith("usage: limitor ")
    assert "python -m" not in installed.stdout


def test_a_closed_pipe_ends_quietly() -> None:
    argv = [sys.executable, "-m", "limitor", "simulate", "--duration", "5"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        process.stdout.close()  # like `| head` that has already exited
        err = process.stderr.read()
        assert process.wait(timeout=120) == 141
    assert err == b""


def _default_sigint() -> None:
    """In the child: Ctrl-C as a terminal delivers it, even when this process ignores it
    (a shell starts background jobs with SIGINT ignored, and children inherit that)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_ends_quietly() -> None:
    argv = [sys.executable, "-m", "limitor", "demo"]
    with subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_default_sigint,
    ) as process:
        assert process.stdout is not None
        assert process.stderr is not None
        assert process.stdout.readline().startswith("limitor demo:")  # running, imports done
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=120) == 130
        err = process.stderr.read()
    assert err == ""


class _ClosedAfter(io.StringIO):
    """A stdout whose reader goes away once ``marker`` is written (like `| head`)."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker

    def write(self, text: str) -> int:
        if self.marker in text:
            raise BrokenPipeError(32, "Broken pipe")
        return super().write(text)


@pytest.mark.parametrize("marker", ["call  3", "task  2", "the demo took"])
def test_a_pipe_closed_at_any_point_of_the_demo_ends_quietly(
    marker: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # "task" lines are printed by tasks of an anyio task group, which wraps the error
    assert main(["demo", "--virtual"], _ClosedAfter(marker)) == 141
    assert capsys.readouterr().err == ""
