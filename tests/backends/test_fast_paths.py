"""Each algorithm's inlined fast path decides exactly as its engine's ``reserve`` does."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from limitor.backends.base import LimitSpec, Part
from limitor.backends.memory import MemoryStore
from limitor.backends.memory._store import generic_fast_path
from limitor.engines import ENGINES
from limitor.testing import FakeClock

steps = st.lists(
    st.tuples(
        st.integers(0, 40).map(lambda k: k / 16),  # time step
        st.floats(0.01, 1.2),  # amount as a share of the burst (some never fit)
        st.booleans(),  # True: take the fast path; False: a general reserve (may wait)
    ),
    max_size=50,
)


@pytest.mark.parametrize("algorithm", sorted(ENGINES))
@settings(max_examples=200, deadline=None)
@given(rate=st.sampled_from([0.5, 3.0, 1000 / 60]), burst=st.integers(1, 12), ops=steps)
# 5.814 + 2.744 - 2 s x 3/s + 4.44 ends 4e-16 above the burst: within the engine's slack
@example(
    rate=3.0,
    burst=7,
    ops=[
        (0.0, 0.8306195359153361, False),
        (0.0, 0.39234282379872815, False),
        (2.0, 0.6343006964303155, True),
    ],
)
def test_the_fast_path_equals_the_engine(
    algorithm: str, rate: float, burst: int, ops: list[Any]
) -> None:
    spec = LimitSpec(parts=(Part(rate, burst),), algorithm=algorithm)
    clocks = FakeClock(), FakeClock()
    fast, reference = MemoryStore(spec, clocks[0]), MemoryStore(spec, clocks[1])
    by_engine = generic_fast_path(reference, reference.engines[0])
    for dt, share, quick in ops:
        for clock in clocks:
            clock.advance(dt)
        amount = round(share * burst, 3)
        if quick:
            assert fast.admit_now(None, amount) == by_engine(None, amount)
        else:
            got = fast.reserve(None, (amount,), float("inf") if amount <= burst else 0.0)
            want = reference.reserve(None, (amount,), float("inf") if amount <= burst else 0.0)
            assert (got.admitted, got.delay) == (want.admitted, want.delay)
        engine = fast.engines[0]
        assert engine.snapshot(fast._shared) == engine.snapshot(reference._shared)
    assert fast.counts() == reference.counts()
