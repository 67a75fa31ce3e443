"""Hooks for observing a limiter's decisions (metrics, logs, traces).

A *listener* is any object with the four methods of :class:`Listener`; attach it with
``limiter.add_listener(listener)`` and detach it with ``remove_listener``. Each method gets
one immutable :class:`LimitEvent`. Subclass :class:`BaseListener` to implement only the
methods you need::

    class PrintRefusals(BaseListener):
        def on_rejected(self, event: LimitEvent) -> None:
            print(f"{event.name}: refused {event.key!r}, retry in {event.retry_after:.2f}s")

    bucket.add_listener(PrintRefusals())

Listeners are called in the caller's thread, outside the limiter's lock, right after the
limiter decided: keep them quick and never let them block. An exception raised by a
listener is logged and swallowed, so observing can never change what is admitted.
A limiter with no listener pays nothing for the feature (its fast paths are unchanged).

:mod:`limitor.contrib.otel` has a ready listener that records OpenTelemetry metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from limitor.errors import ConfigTypeError

__all__ = ("BaseListener", "LimitEvent", "Listener")

log = logging.getLogger("limitor")


@dataclass(frozen=True, slots=True)
class LimitEvent:
    """One decision of a limiter, as told to its listeners."""

    name: str | None
    """The limiter's name (``limiter.name``), or ``None`` if it has none."""

    key: Hashable
    """The key (user, host...) of a keyed limiter; ``None`` for a single bucket."""

    amount: Any
    """The amount asked for (units; a tuple of units for limiters of several limits)."""

    wait: float = 0.0
    """Seconds the admitted request was scheduled to wait (0: admitted at once)."""

    retry_after: float = 0.0
    """Seconds until a refused request would be admitted (0 unless refused)."""

    error: BaseException | None = None
    """The failure, for :meth:`Listener.on_backend_error`."""


@runtime_checkable
class Listener(Protocol):
    """What a limiter calls when it decides; every method gets a :class:`LimitEvent`."""

    def on_admitted(self, event: LimitEvent) -> None:
        """A request was admitted, at once (``wait == 0``) or for ``wait`` seconds later."""
        ...

    def on_waited(self, event: LimitEvent) -> None:
        """An admitted request has to wait ``event.wait > 0`` seconds (after on_admitted)."""
        ...

    def on_rejected(self, event: LimitEvent) -> None:
        """A request was refused (policing, timeout, full queue); nothing was taken."""
        ...

    def on_backend_error(self, event: LimitEvent) -> None:
        """The backend holding the limit's state failed (``event.error``)."""
        ...


class BaseListener:
    """A :class:`Listener` whose methods do nothing: override the ones you need."""

    def on_admitted(self, event: LimitEvent) -> None:
        """Do nothing."""

    def on_waited(self, event: LimitEvent) -> None:
        """Do nothing."""

    def on_rejected(self, event: LimitEvent) -> None:
        """Do nothing."""

    def on_backend_error(self, event: LimitEvent) -> None:
        """Do nothing."""


def check_listener(listener: object) -> Listener:
    """``listener`` if it has the four methods of :class:`Listener`, else raise."""
    if not isinstance(listener, Listener):
        raise ConfigTypeError(
            "a listener needs on_admitted, on_waited, on_rejected and on_backend_error, "
            f"got {listener!r}"
        )
    return listener


def notify(listeners: tuple[Listener, ...], method: str, event: LimitEvent) -> None:
    """Call ``method`` of every listener with ``event``; log and swallow their errors."""
    for listener in listeners:
        try:
            getattr(listener, method)(event)
        except Exception:
            log.exception("limitor listener %r failed in %s", listener, method)
