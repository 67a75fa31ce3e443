"""The promises, checked on whole buckets (not just engines) with random operations.

Hypothesis drives a bucket on a fake clock through reservations, waits, cancellations
in any order and reconciliations; the schedule of what was really used must never exceed
``burst + rate * window`` in any window.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from limitor.configs import BucketConfig
from limitor.errors import AcquireTimeout
from limitor.results import Reservation
from limitor.testing import FakeClock

from .backends.store_driver import worst_excess
from .conftest import SYNC_BUCKETS

operations = st.lists(
    st.one_of(
        st.tuples(st.just("reserve"), st.floats(0.05, 1.0), st.sampled_from([None, 0.0, 0.7, 4.0])),
        st.tuples(st.just("cancel"), st.integers(0, 1000), st.none()),
        st.tuples(st.just("reconcile"), st.integers(0, 1000), st.floats(0.0, 1.0)),
        st.tuples(st.just("advance"), st.integers(1, 16).map(lambda k: k / 8), st.none()),
    ),
    max_size=80,
)


@pytest.mark.parametrize("bucket_type", SYNC_BUCKETS, ids=lambda cls: cls.__name__)
@settings(max_examples=150, deadline=None)
@given(rate=st.sampled_from([1.0, 2.5, 10.0]), burst=st.integers(1, 8), ops=operations)
def test_a_bucket_never_over_admits(
    bucket_type: Any, rate: float, burst: int, ops: list[Any]
) -> None:
    clock = FakeClock()
    bucket = bucket_type(BucketConfig(capacity=rate, seconds=1, burst=burst), clock=clock)
    held: list[Reservation] = []
    for op, a, b in ops:
        if op == "reserve":
            with contextlib.suppress(AcquireTimeout):
                held.append(bucket.reserve(round(a * burst, 3) or 0.001, timeout=b))
        elif op == "advance":
            clock.advance(a)
        elif held:
            reservation = held[a % len(held)]
            if not reservation.ok:
                continue
            if op == "cancel" and reservation.time_to_act > clock.now():
                reservation.cancel()
            elif op == "reconcile":
                reservation.reconcile(reservation.amount * b)  # only ever downwards here
    cells = [(r.time_to_act, r.amount if r.ok else 0.0) for r in held if r.amount > 0]
    assert worst_excess(cells, rate, burst) <= 1e-6 * burst
