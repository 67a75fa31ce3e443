"""simulate() with a total over per-key limits, FIFO or fair."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from limitor import ConfigError, simulate
from tests.test_total import worst_window

HEAVY_AND_LIGHT = sorted(
    [(0.0, 1, "heavy")] * 100 + [(1.0, 1, "light")], key=lambda arrival: arrival[0]
)


def test_fifo_makes_the_light_key_wait_behind_the_heavy_queue() -> None:
    result = simulate(HEAVY_AND_LIGHT, "100/s", per_key=True, total="10/s", record=True)
    assert result.total == "10/s, burst 10"
    assert not result.fair
    assert result.keys["light"].wait_max == pytest.approx(8.1)  # asked at 1, went at 9.1
    assert result.admitted == 101


def test_fair_turns_let_the_light_key_go_at_once_and_the_total_stays_busy() -> None:
    result = simulate(HEAVY_AND_LIGHT, "100/s", per_key=True, total="10/s", fair=True)
    assert result.fair
    assert result.keys["light"].wait_max <= 0.25
    assert result.last_admission == pytest.approx(9.1)  # nothing idled: 101 at 10/s
    total = result.limits[-1]
    assert total.total
    assert total.most <= total.bound + 1e-9
    assert "the total: 10/s, fair turns" in result.summary()
    data = result.to_dict()
    assert data["fair"] is True
    assert data["total"] == "10/s, burst 10"
    assert data["limits"][-1]["total"] is True


def test_weights_give_shares_of_the_total() -> None:
    arrivals = [(0.0, 1, "a")] * 200 + [(0.0, 1, "b")] * 200
    result = simulate(
        arrivals, "100/s", per_key=True, total="10/s", fair=True, record=True,
        weight=lambda key: 3 if key == "a" else 1,
    )  # fmt: skip
    calls = result.calls_log or ()
    a = sum(1 for c in calls if c.key == "a" and 2.0 <= (c.admitted_at or -1) < 12.0)
    b = sum(1 for c in calls if c.key == "b" and 2.0 <= (c.admitted_at or -1) < 12.0)
    assert a / b == pytest.approx(3.0, rel=0.15)


def test_the_llm_totals_fifo_and_fair() -> None:
    arrivals = sorted(
        [(0.0, 1_000, "batch")] * 100 + [(1.02, 1_000, "chat")], key=lambda arrival: arrival[0]
    )
    waits = {}
    for fair in (False, True):
        result = simulate(
            arrivals, tokens_per_minute=60_000, per_key=True,
            total_tokens_per_minute=60_000, fair=fair,
        )  # fmt: skip
        waits[fair] = result.keys["chat"].wait_max
        assert result.total == "60000 tokens/minute"
        assert result.limits[-1].total
        assert result.limits[-1].unit == "tokens"
    assert waits[False] == pytest.approx(40.0, abs=0.1)
    assert waits[True] == pytest.approx(1.0, abs=0.1)


@pytest.mark.parametrize("fair", [False, True])
def test_refusals_under_a_total(fair: bool) -> None:
    raised = simulate(HEAVY_AND_LIGHT, "100/s", per_key=True, total="10/s", fair=fair, mode="raise")
    assert raised.admitted == 11  # the total's burst at 0, then the light key's at 1
    assert raised.rejected == 90
    timed = simulate(HEAVY_AND_LIGHT, "100/s", per_key=True, total="10/s", fair=fair, timeout=2)
    # 10 at once and 2 s of the total (the light key's call among them under fair
    # turns; after the heavy key's under FIFO, 1.1 s after it asked)
    assert timed.admitted == (30 if fair else 31)
    assert timed.keys["light"].admitted == 1
    assert timed.keys["light"].wait_max == pytest.approx(0.0 if fair else 1.1)
    too_large = simulate(
        [(0.0, 5, "a"), (0.0, 20, "b")], "100/s", per_key=True, total="10/s", fair=fair
    )
    assert too_large.too_large == 1
    assert too_large.admitted == 1


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="per_key"):
        simulate([(0.0, 1)], "10/s", total="100/s")
    with pytest.raises(ConfigError, match="total"):
        simulate([(0.0, 1)], "10/s", per_key=True, fair=True)
    with pytest.raises(ConfigError, match="total"):
        simulate([(0.0, 1)], "10/s", fair=True)
    with pytest.raises(ConfigError, match="levels"):
        simulate([(0.0, 1)], "10/s", per_key=True, total="100/s", fair=True, levels=0.1)
    with pytest.raises(ConfigError, match="total_requests"):
        simulate([(0.0, 1)], tokens_per_minute=100, per_key=True, total="100/s")
    with pytest.raises(ConfigError, match="LLM"):
        simulate([(0.0, 1)], "10/s", per_key=True, total_tokens_per_minute=100)
    with pytest.raises(ConfigError, match="fair"):
        simulate([(0.0, 1)], "10/s", per_key=True, total="100/s", fair="yes")  # type: ignore[arg-type]


ARRIVALS = st.lists(
    st.tuples(
        st.floats(0, 5, allow_nan=False).map(lambda t: round(t, 2)),
        st.sampled_from([1, 2, 3]),
        st.sampled_from(["a", "b", "c"]),
    ),
    max_size=40,
)


@settings(max_examples=30, deadline=None)
@given(arrivals=ARRIVALS, fair=st.booleans(), mode=st.sampled_from(["wait", "raise", "timeout"]))
def test_every_key_and_the_total_keep_their_bounds(
    arrivals: list[Any], fair: bool, mode: str
) -> None:
    arrivals.sort(key=lambda arrival: arrival[0])
    result = simulate(
        arrivals, "4/s", burst=3, per_key=True, total="6/s", total_burst=4, fair=fair,
        record=True, timeout=0.5 if mode == "timeout" else None,
        mode="raise" if mode == "raise" else "wait",
    )  # fmt: skip
    went = [c for c in result.calls_log or () if c.admitted_at is not None]
    for key in "abc":
        mine = [(c.admitted_at, c.amount) for c in went if c.key == key]
        assert worst_window(mine, 4, 3) <= 1e-6, key
    assert worst_window([(c.admitted_at, c.amount) for c in went], 6, 4) <= 1e-6
    assert result.admitted + result.rejected == len(arrivals)


@pytest.mark.parametrize("fair", [False, True])
def test_the_command_line_takes_a_total_and_fair_turns(
    tmp_path: Any, capsys: pytest.CaptureFixture[str], fair: bool
) -> None:
    from limitor.__main__ import main

    trace = tmp_path / "heavy-and-light.csv"
    rows = ["time,amount,key"] + [f"{t},{a},{k}" for t, a, k in HEAVY_AND_LIGHT]
    trace.write_text("\n".join(rows) + "\n", encoding="utf-8")
    argv = ["simulate", "--trace", str(trace), "--rate", "100/s", "--per-key", "--total", "10/s"]
    assert main([*argv, *(["--fair"] if fair else [])]) == 0
    out = capsys.readouterr().out
    assert "per key, total 10/s, burst 10" + (", fair" if fair else "") in out
    assert main([*argv, "--json", *(["--fair"] if fair else [])]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["fair"] is fair
    assert data["limits"][-1]["total"] is True
    assert data["keys"]["light"]["wait_max"] == pytest.approx(0.0 if fair else 8.1, abs=0.25)
    assert main(["simulate", "--total", "10/s"]) == 2  # a total needs --per-key
    assert "per_key" in capsys.readouterr().err
