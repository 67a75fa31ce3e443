"""The argument binder behind key=: the same key for positional and keyword calls."""

from __future__ import annotations

from typing import Any

import pytest

from limitor._binding import ArgumentBinder


def handler(request: str, user_id: str | None = None, *, verbose: bool = False) -> None:
    pass


def test_positional_and_keyword_calls_normalise_alike() -> None:
    binder = ArgumentBinder(handler)
    expected = ((), {"request": "r", "user_id": "u"})
    assert binder.normalize(("r", "u"), {}) == expected
    assert binder.normalize(("r",), {"user_id": "u"}) == expected
    assert binder.normalize((), {"user_id": "u", "request": "r"}) == expected
    assert binder.normalize(("r",), {"verbose": True}) == ((), {"request": "r", "verbose": True})


def test_positional_only_and_varargs_stay_positional() -> None:
    def f(a: int, /, b: int, *rest: int, c: int = 0, **extra: int) -> None:
        pass

    binder = ArgumentBinder(f)
    assert binder.normalize((1, 2, 3, 4), {"c": 5, "z": 6}) == ((1, 2, 3, 4), {"c": 5, "z": 6})
    assert binder.normalize((1,), {"b": 2}) == ((1,), {"b": 2})


def test_plans_are_reused_and_bounded() -> None:
    binder = ArgumentBinder(handler)
    for _ in range(3):
        binder.normalize(("r",), {"user_id": "u"})
    assert len(binder._plans) == 1

    def anything(**kwargs: Any) -> None:
        pass

    many = ArgumentBinder(anything)
    for i in range(200):
        assert many.normalize((), {f"k{i}": i}) == ((), {f"k{i}": i})
    assert len(many._plans) <= 64


def test_calls_that_do_not_fit_raise_type_error() -> None:
    with pytest.raises(TypeError):
        ArgumentBinder(handler).normalize(("r", "u", "extra"), {})


def test_value_by_keyword_or_position() -> None:
    binder = ArgumentBinder(handler)
    assert binder.value("user_id", ("r", "u"), {}) == "u"
    assert binder.value("user_id", ("r",), {"user_id": "k"}) == "k"
    assert binder.value("user_id", ("r",), {}) is None
    assert binder.value("verbose", ("r",), {}) is None


def test_defaults_and_keyword_parameters() -> None:
    def chat(messages: list[str], max_tokens: int = 512, *, user_id: str = "anon") -> None:
        pass

    def loose(*args: Any, **kwargs: Any) -> None:
        pass

    binder = ArgumentBinder(chat)
    assert binder.default("user_id") == "anon"
    assert binder.default("messages") is None  # no default
    assert binder.default("missing") is None
    assert binder.defaults(("max_tokens", "max_output_tokens", "messages")) == {"max_tokens": 512}
    assert binder.value("max_tokens", (["m"],), {}, default=7) == 7
    assert binder.value("max_tokens", (["m"], 3), {}, default=7) == 3
    assert binder.value("user_id", (["m"], 3), {}, default="x") == "x"  # keyword-only
    assert not binder.takes_any_keyword
    assert ArgumentBinder(loose).takes_any_keyword
