"""The errors limitor raises.

Every error derives from :class:`LimitorError`, so ``except LimitorError`` catches all of
them; each also derives from the built-in exception a caller would expect::

    LimitorError                         base of every limitor error
    ├── ConfigError (ValueError)         a configuration value is invalid; names the field
    │   └── ConfigTypeError (TypeError)  ... because it has the wrong type
    ├── AmountError (ValueError)         an amount is invalid or can never be admitted
    │   └── AmountTypeError (TypeError)  ... because it has the wrong type
    ├── KeyTypeError (TypeError)         a key cannot name a bucket (it is unhashable)
    ├── RateLimitExceeded                not admitted now; carries ``retry_after``
    │   ├── AcquireTimeout (TimeoutError)  the wait would be longer than the timeout
    │   └── QueueFull                    too many callers are already waiting
    ├── ReservationError                 a reservation was used after it was cancelled
    └── BackendError                     the backend holding the limits failed; names it

``RateLimitExceeded`` and its subclasses are raised *before* anything is consumed or
slept: a caller that gets one has taken nothing from the limit.
"""

from __future__ import annotations

import math

__all__ = (
    "AcquireTimeout",
    "AmountError",
    "AmountTypeError",
    "BackendError",
    "ConfigError",
    "ConfigTypeError",
    "KeyTypeError",
    "LimitorError",
    "QueueFull",
    "RateLimitExceeded",
    "ReservationError",
)


class LimitorError(Exception):
    """Base class of every error raised by limitor."""


class ConfigError(LimitorError, ValueError):
    """A configuration value is invalid (zero, negative, NaN, infinite...)."""


class ConfigTypeError(ConfigError, TypeError):
    """A configuration value has the wrong type (a string, a bool, None...)."""


class AmountError(LimitorError, ValueError):
    """An amount is invalid (negative, NaN) or larger than the burst, so it can never fit."""


class AmountTypeError(AmountError, TypeError):
    """An amount is not a real number."""


class KeyTypeError(LimitorError, TypeError):
    """A key cannot name a bucket: it is unhashable (a list, a dict, a set...)."""


class RateLimitExceeded(LimitorError):
    """The call was not admitted; ``retry_after`` says in how many seconds it would be.

    Nothing was consumed from the limit.
    """

    retry_after: float

    def __init__(self, message: str = "rate limit exceeded", retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def retry_after_header(self) -> str:
        """``retry_after`` rounded up to whole seconds, as an HTTP ``Retry-After`` value."""
        return str(max(0, math.ceil(self.retry_after)))


class AcquireTimeout(RateLimitExceeded, TimeoutError):
    """The wait needed is longer than the caller's timeout; raised at once, before sleeping."""

    def __init__(self, message: str = "acquire timed out", retry_after: float = 0.0) -> None:
        super().__init__(message, retry_after)


class QueueFull(RateLimitExceeded):
    """Too many callers are already waiting.

    Kept for code that catches it: the queue bucket (``max_size``) now makes callers wait
    for room instead, as limitor 0.6 did, and raises :class:`AcquireTimeout` when a
    ``timeout`` cannot be met.
    """


class ReservationError(LimitorError):
    """A reservation was reconciled after it had been cancelled."""


class BackendError(LimitorError):
    """The backend that holds the limits failed (for example, Redis is unreachable)."""

    backend: str

    def __init__(self, message: str, backend: str = "") -> None:
        super().__init__(f"{backend}: {message}" if backend else message)
        self.backend = backend
