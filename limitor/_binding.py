"""Normalising a call's arguments against the called function's signature, fast.

A ``key=`` callback must see the same arguments whether the caller wrote ``f(request)``
or ``f(request=request)``. The binder passes every argument *by name* where the
signature allows (positional-only and ``*args`` values stay positional), so a callback
written as ``lambda request, **kw: ...`` fits every call.

:meth:`inspect.Signature.bind` does the work but costs microseconds; the binder asks it
once per *shape* of call (how many positional arguments, which keywords) and replays the
result as a cheap plan afterwards.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

_MAX_SHAPES = 64

# A plan: where each positional value comes from, and each keyword's name and source.
# A source is an index into the call's args or the name of one of its keywords.
_Plan = tuple[tuple[int | str, ...], tuple[tuple[str, int | str], ...]]


class ArgumentBinder:
    """Map the ``(args, kwargs)`` of calls to a function onto its parameters' names."""

    __slots__ = ("_plans", "_positions", "_signature")

    def __init__(self, func: Callable[..., Any]) -> None:
        self._signature = inspect.signature(func)
        self._plans: dict[tuple[int, tuple[str, ...]], _Plan] = {}
        self._positions: dict[str, int] = {}
        for index, parameter in enumerate(self._signature.parameters.values()):
            if parameter.kind not in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
                break
            self._positions[parameter.name] = index

    @property
    def parameters(self) -> tuple[str, ...]:
        """The function's parameter names, in order."""
        return tuple(self._signature.parameters)

    @property
    def takes_any_keyword(self) -> bool:
        """Whether the function has a ``**kwargs`` parameter."""
        return any(
            p.kind == inspect.Parameter.VAR_KEYWORD for p in self._signature.parameters.values()
        )

    def default(self, name: str) -> Any:
        """The default value of parameter ``name`` (``None`` if it has none)."""
        parameter = self._signature.parameters.get(name)
        if parameter is None or parameter.default is inspect.Parameter.empty:
            return None
        return parameter.default

    def defaults(self, names: tuple[str, ...]) -> dict[str, Any]:
        """The defaults of those of ``names`` that are parameters with a default."""
        found = {}
        for name in names:
            parameter = self._signature.parameters.get(name)
            if parameter is not None and parameter.default is not inspect.Parameter.empty:
                found[name] = parameter.default
        return found

    def normalize(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The call's arguments, by name wherever the signature allows.

        Raises:
            TypeError: the arguments do not fit the signature (as the call itself would).
        """
        shape = (len(args), tuple(kwargs))
        plan = self._plans.get(shape)
        if plan is None:
            plan = self._plan(shape)
        positional, keywords = plan
        return (
            tuple(args[s] if isinstance(s, int) else kwargs[s] for s in positional),
            {name: args[s] if isinstance(s, int) else kwargs[s] for name, s in keywords},
        )

    def value(
        self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], default: Any = None
    ) -> Any:
        """The value passed for parameter ``name`` (``default`` when it was not passed)."""
        if name in kwargs:
            return kwargs[name]
        index = self._positions.get(name)
        if index is not None and index < len(args):
            return args[index]
        return default

    def _plan(self, shape: tuple[int, tuple[str, ...]]) -> _Plan:
        count, names = shape
        # Bind sources instead of values: the bound layout is the plan.
        bound = self._signature.bind(*range(count), **{name: name for name in names})
        parameters = self._signature.parameters
        has_varargs = any(
            p.kind == p.VAR_POSITIONAL and bound.arguments.get(p.name) for p in parameters.values()
        )
        positional: list[int | str] = []
        keywords: list[tuple[str, int | str]] = []
        for name, source in bound.arguments.items():
            kind = parameters[name].kind
            if kind == inspect.Parameter.VAR_POSITIONAL:
                positional.extend(source)
            elif kind == inspect.Parameter.VAR_KEYWORD:
                keywords.extend((key, key) for key in source)
            elif kind == inspect.Parameter.POSITIONAL_ONLY or (
                has_varargs and kind == inspect.Parameter.POSITIONAL_OR_KEYWORD
            ):
                positional.append(source)
            else:
                keywords.append((name, source))
        plan = (tuple(positional), tuple(keywords))
        if len(self._plans) < _MAX_SHAPES:
            self._plans[shape] = plan
        return plan
