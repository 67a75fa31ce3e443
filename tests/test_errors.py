from __future__ import annotations

import pickle

import pytest

import limitor.errors as errors
from limitor.errors import (
    AcquireTimeout,
    AmountError,
    AmountTypeError,
    BackendError,
    ConfigError,
    ConfigTypeError,
    LimitorError,
    QueueFull,
    RateLimitExceeded,
    ReservationError,
)


@pytest.mark.parametrize(
    ("cls", "builtin"),
    [
        (ConfigError, ValueError),
        (ConfigTypeError, TypeError),
        (ConfigTypeError, ValueError),
        (AmountError, ValueError),
        (AmountTypeError, TypeError),
        (AcquireTimeout, TimeoutError),
        (AcquireTimeout, RateLimitExceeded),
        (QueueFull, RateLimitExceeded),
    ],
)
def test_each_error_is_also_the_builtin_callers_expect(cls: type[Exception], builtin: type) -> None:
    assert issubclass(cls, builtin)
    assert issubclass(cls, LimitorError)


def test_every_public_error_derives_from_limitor_error() -> None:
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), LimitorError), name


def test_every_error_is_drawn_in_the_module_docstring() -> None:
    assert errors.__doc__ is not None
    for name in errors.__all__:
        assert name in errors.__doc__, name


@pytest.mark.parametrize("cls", [RateLimitExceeded, AcquireTimeout, QueueFull])
def test_retry_after_survives_pickling(cls: type[RateLimitExceeded]) -> None:
    error = cls("slow down", retry_after=2.5)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is cls
    assert copy.retry_after == 2.5
    assert str(copy) == "slow down"


@pytest.mark.parametrize(
    ("retry_after", "header"), [(0.0, "0"), (0.2, "1"), (1.0, "1"), (2.01, "3")]
)
def test_retry_after_header_rounds_up(retry_after: float, header: str) -> None:
    assert RateLimitExceeded(retry_after=retry_after).retry_after_header == header


def test_backend_error_names_its_backend() -> None:
    error = BackendError("connection refused", backend="redis://localhost:6379")
    assert "redis://localhost:6379" in str(error)
    assert error.backend == "redis://localhost:6379"
    assert isinstance(ReservationError("x"), LimitorError)
