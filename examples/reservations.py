"""Reservations: commit a slot now, wait for it yourself, cancel it or correct its amount.

``reserve()`` never waits: it commits the earliest time the amount fits and returns a
``Reservation`` whose ``delay`` says how long to wait. Then the caller either waits
(``wait()``, or ``await wait_async()``) and goes, or gives the slot back with
``cancel()``. ``reconcile(actual)`` corrects the amount once the real cost is known:
unused units are given back, extra units become *debt* that later callers wait for.

Cancelling gives the slot back exactly: standing reservations keep their times, later
callers use the freed slot (with other freed slots, within one burst, when one alone is
too small), and when the cancelled reservations are the latest ones the bucket is as if
they had never been made.

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

    print(f"  cancel third:  gives back {third.cancel():g} (a hole; fourth keeps its time)")
    again = bucket.reserve()
    print(f"  a new reservation goes after {again.delay:.1f} s, in third's hole")
    print(f"  cancel it and fourth: gives back {again.cancel() + fourth.cancel():g}")
    last = bucket.reserve()
    print(f"  as if they never came: the next goes after {last.delay:.1f} s")
    last.wait()  # sleeps on the clock: virtual time moves on
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
