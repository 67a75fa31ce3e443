"""Fresh locks in a child process made by ``os.fork()``.

A thread of the parent may hold a limiter's lock at the moment another thread forks; the
child inherits the lock held, by a thread that does not exist there, and would wait for
it forever. Objects that own locks register here with the function that renews them,
and the child calls it before it runs anything else. The parent's state (admissions,
debt) is inherited as it was: the child starts from the same view of the limit, as a
copy of the process should.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_OWNERS: weakref.WeakKeyDictionary[Any, Callable[[Any], None]] = weakref.WeakKeyDictionary()
_REGISTRY_LOCK = threading.Lock()


def register(owner: T, renew: Callable[[T], None]) -> None:
    """Call ``renew(owner)`` in every child forked from now on (while ``owner`` lives).

    ``renew`` is usually the owner's own method, taken from its class
    (``type(self)._after_fork``), so the registry holds no strong reference to the owner.
    """
    with _REGISTRY_LOCK:
        _OWNERS[owner] = renew


def _renew_locks() -> None:
    global _REGISTRY_LOCK
    _REGISTRY_LOCK = threading.Lock()
    for owner, renew in list(_OWNERS.items()):
        renew(owner)


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_renew_locks)
