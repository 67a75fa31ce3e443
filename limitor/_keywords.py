"""Keyword options written once: a ``TypedDict`` of their types, one mapping of defaults.

A decorator or constructor with many keyword options declares them once as a
``TypedDict`` (the name and type of each) and takes them as
``**options: Unpack[TheTypedDict]`` in its ``@overload`` s and its implementation, so
type checkers and IDEs see every keyword with its type (PEP 692) and reject a misspelt
one. :class:`Keywords` holds that ``TypedDict`` with the defaults that are not ``None``,
and at run time:

- :meth:`Keywords.fill` refuses a keyword the ``TypedDict`` does not declare with the
  ``TypeError`` Python itself raises (``f() got an unexpected keyword argument 'x'``),
  and returns every keyword, the defaults filled in;
- :meth:`Keywords.signature` gives the function the signature it would have with every
  keyword written out (``inspect.signature``, ``help()`` and the API reference show the
  keywords and their defaults, not ``**options``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

__all__ = ("Keywords",)

T = TypeVar("T", bound=Mapping[str, Any])
F = TypeVar("F", bound=Callable[..., Any])


def _annotation(value: object) -> object:
    """A ``TypedDict`` field's annotation as written (a string under postponed annotations)."""
    return getattr(value, "__forward_arg__", value)


class Keywords:
    """The keyword options of one callable: their ``TypedDict`` and their defaults.

    Args:
        declared: the ``TypedDict`` (``total=False``) naming each keyword and its type.
        defaults: the defaults that are not ``None`` (every other keyword defaults to
            ``None``).
    """

    __slots__ = ("_annotations", "_defaults", "names")

    def __init__(self, declared: type[Mapping[str, Any]], defaults: Mapping[str, object]) -> None:
        annotations: dict[str, object] = declared.__annotations__  # the bases' first
        self.names: frozenset[str] = frozenset(declared.__optional_keys__)  # type: ignore[attr-defined]
        unknown = set(defaults) - self.names
        if unknown:
            raise AssertionError(f"defaults for undeclared keywords: {sorted(unknown)}")
        self._annotations = {name: _annotation(annotations[name]) for name in annotations}
        self._defaults = {name: defaults.get(name) for name in annotations}

    def fill(self, given: T, owner: str) -> T:
        """Every keyword: ``given``, then the defaults.

        Raises:
            TypeError: a keyword not declared (named as Python names it), for ``owner()``.
        """
        for name in given:
            if name not in self.names:
                raise TypeError(f"{owner}() got an unexpected keyword argument {name!r}")
        return cast(T, {**self._defaults, **given})

    def signature(self, func: F) -> F:
        """Give ``func`` (taking ``**options``) the signature with every keyword written out."""
        plain = inspect.signature(func)
        parameters = [p for p in plain.parameters.values() if p.kind is not p.VAR_KEYWORD]
        parameters += [
            inspect.Parameter(
                name,
                inspect.Parameter.KEYWORD_ONLY,
                default=self._defaults[name],
                annotation=self._annotations[name],
            )
            for name in self._defaults
        ]
        func.__signature__ = plain.replace(parameters=parameters)  # type: ignore[attr-defined]
        return func
