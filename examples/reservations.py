"""Reservations: commit a slot now, wait for it yourself, cancel it or correct its amount.

``reserve()`` never waits: it commits the earliest time the amount fits and returns a
``Reservation`` whose ``delay`` says how long to wait. Then the caller either waits
(``wait()``, or ``await wait_async()``) and goes, or gives the slot back with
``cancel()``. ``reconcile(actual)`` corrects the amount once the real cost is known:
unused units are given back, extra units become *debt* that later callers wait for.

Cancelling follows Go's ``x/time/rate``: a reservation gives back only what no later
reservation depends on. Cancel every later one too and everything comes back.

This runs on a ``FakeClock``: waits are virtual, so it finishes at once and prints the
same numbers every time.

Run it with::

    python examples/reservations.py
"""

from __future__ import annotations

from limitor import BucketConfig, SyncLeakyBucket
from limitor.testing import FakeClock


def scheduling() -> None:
    print("1. reserve, then wait or cancel (2 per second, bursts of 2)")
    clock = FakeClock()
    bucket = SyncLeakyBucket(BucketConfig(capacity=2, seconds=1), clock=clock)
    names = ("first", "second", "third", "fourth")
    reservations = [bucket.reserve() for _ in names]
    for name, r in zip(names, reservations, strict=True):
        print(f"  {name:<6} may go after {r.delay:.1f} s  {r!r}")
    third, fourth = reservations[2:]

    print(f"  cancel third:  gives back {third.cancel():g} (fourth still counts on it)")
    print(f"  cancel fourth: gives back {fourth.cancel():g} (its own slot and third's)")
    again = bucket.reserve()
    print(f"  a new reservation goes after {again.delay:.1f} s, where third was")
    again.wait()  # sleeps on the clock: virtual time moves on
    print(f"  waited: the clock now reads {clock.now():.1f} s")


def reconciling() -> None:
    print("2. reconcile: refund what was unused, charge the excess as debt (10 per second)")
    clock = FakeClock()
    bucket = SyncLeakyBucket(BucketConfig(capacity=10, seconds=1), clock=clock)

    estimate = bucket.reserve(8)
    estimate.reconcile(3)  # the call used only 3 of the 8 it reserved
    print(f"  reserved 8, used 3: {bucket.status().remaining:g} of 10 left")

    under = bucket.reserve(5)
    under.reconcile(25)  # the call used 25: 20 more than reserved, and more than the burst
    status = bucket.status()
    print(
        f"  reserved 5, used 25: nothing raised; {status.remaining:g} left, "
        f"full again in {status.reset_after:.1f} s"
    )
    later = bucket.reserve()
    print(f"  the next caller pays the debt: it waits {later.delay:.1f} s")


if __name__ == "__main__":
    scheduling()
    reconciling()
