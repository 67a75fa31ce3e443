"""Fresh locks in a child process made by ``os.fork()``.

A thread of the parent may hold a limiter's lock at the moment another thread forks; the
child inherits the lock held, by a thread that does not exist there, and would wait for
it forever. Objects that own locks register here, and the child replaces their locks
before it runs anything else. The parent's state (admissions, debt) is inherited as it was:
the child starts from the same view of the limit, as a copy of the process should.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Protocol


class _Relockable(Protocol):
    def _after_fork(self) -> None: ...


_OWNERS: weakref.WeakSet[_Relockable] = weakref.WeakSet()
_REGISTRY_LOCK = threading.Lock()


def register(owner: _Relockable) -> None:
    """Call ``owner._after_fork()`` in every child forked from now on (while it lives)."""
    with _REGISTRY_LOCK:
        _OWNERS.add(owner)


def _renew_locks() -> None:
    global _REGISTRY_LOCK
    _REGISTRY_LOCK = threading.Lock()
    for owner in list(_OWNERS):
        owner._after_fork()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_renew_locks)
