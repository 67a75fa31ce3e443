"""Per-user limits with ``@rate_limit_per_user``: every user gets a bucket of their own.

1. The pattern from the limitor 0.6 README, now built in: 2 calls per second per user,
   at most 3 users' buckets kept, each kept 10 minutes (``ttl=600``). Two users calling
   in turn each get their own burst and pace; neither slows the other down.
2. A key computed from the arguments (``key=``), here the client's IP address.
3. The cache rule, on a fake clock so no time passes: ``max_users`` drops only buckets
   that are full again; a bucket still refilling is never forgotten (forgetting it would
   hand its user a fresh burst), and the cache never grows past ``max_users`` either: a
   new key that finds no room shares one *overflow* bucket (same rate and burst) with
   every other such key until room frees, which admits less, never more.

Run it with::

    python examples/per_user.py

It takes about one second.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from limitor import limiter_of, rate_limit_per_user
from limitor.testing import FakeClock

START = time.monotonic()


@rate_limit_per_user(capacity=2, seconds=1, max_users=3, ttl=600)  # ttl: 10 minutes per user
def something_user(user_id: int) -> None:
    """Called with ``user_id=...``: the key of the bucket."""
    print(f"  user {user_id} called at +{time.monotonic() - START:.2f} s")


@dataclass
class Request:
    """A stand-in for a web framework's request."""

    client_ip: str
    path: str


@rate_limit_per_user(capacity=1, seconds=1, key=lambda request, **kw: request.client_ip)
def endpoint(request: Request) -> str:
    """One request per second per client IP."""
    return f"200 OK {request.path}"


def the_cache_rule() -> None:
    clock = FakeClock()

    @rate_limit_per_user(capacity=2, seconds=1, max_users=3, ttl=600, clock=clock)
    def login(user_id: str) -> None:
        pass

    for user in ("ann", "bob", "cyd", "dee"):
        login(user)  # each bucket is now half empty: refilling (dee: the overflow bucket)
    stats = limiter_of(login).stats
    print(f"  4 users, all refilling: users={stats.users} overflows={stats.overflows}")

    clock.advance(1.0)  # every bucket is full again: the same as no bucket at all
    login("eve")  # needs room: full buckets are dropped, least recently used first
    stats = limiter_of(login).stats
    print(f"  1 s later, eve arrives: users={stats.users} evictions={stats.evictions}")


def main() -> None:
    print("1. two users calling in turn, 2 calls/s each:")
    for call in range(8):
        something_user(user_id=call % 2)

    print("2. one call per second per client IP:")
    began = time.monotonic()
    for ip in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        print(f"  {ip}: {endpoint(Request(ip, '/home'))}")
    print(f"  three clients, three buckets: no waiting ({time.monotonic() - began:.2f} s)")

    print("3. max_users never forgets a bucket that is still refilling:")
    the_cache_rule()


if __name__ == "__main__":
    main()
