"""Holding and resetting the total of a keyed limiter, written once for every such limiter.

:class:`~limitor.per_user.PerUserLimiter` (``total=``) and
:class:`~limitor.llm.LLMLimiter` (``total_tokens_per_minute=``, ...) both put one more
limit over all their keys, the backend's key :data:`~limitor.backends.base.TOTAL`.
:class:`TotalVerbs` gives them the verbs that address it: ``hold(seconds, total=True)``,
``reset_total()`` and their async twins, each refusing at once on a limiter made
without a total.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import ClassVar

from limitor.backends.base import TOTAL
from limitor.errors import ConfigError
from limitor.limiter import Limiter

__all__ = ("TotalVerbs",)


class TotalVerbs(Limiter):
    """``hold(total=True)`` and ``reset_total()`` for a keyed limiter with a total.

    A subclass names how its total is given (``_total_keyword``), for the error raised
    when the limiter has none.
    """

    __slots__ = ()

    _total_keyword: ClassVar[str]
    """How the limiter is given a total, as the error says: ``"total="``, ..."""

    def _need_total(self, verb: str) -> None:
        """Raise unless the limiter has a total.

        Raises:
            ConfigError: the limiter was made without a total; the message names ``verb``.
        """
        if not self._spec.totals:
            raise ConfigError(f"{verb}() needs a limiter made with {self._total_keyword}")

    def hold(self, seconds: float, *, key: Hashable = None, total: bool = False) -> None:
        """Admit nothing for ``key`` during the next ``seconds`` (a ``Retry-After``).

        With ``total=True`` (a limiter with a total), hold the total instead (every total
        of an LLM limiter): no key is admitted during the next ``seconds``.
        """
        if total:
            self._need_total("hold(total=True)")
            key = TOTAL
        self._hold(key, seconds)

    async def hold_async(
        self, seconds: float, *, key: Hashable = None, total: bool = False
    ) -> None:
        """:meth:`hold` for tasks (never blocks the event loop)."""
        if total:
            self._need_total("hold_async(total=True)")
            key = TOTAL
        await self._hold_async(key, seconds)

    def reset_total(self) -> None:
        """Forget the total's state (full again); the keys' own limits stay as they are."""
        self._need_total("reset_total")
        self._reset(TOTAL)

    async def reset_total_async(self) -> None:
        """:meth:`reset_total` for tasks (never blocks the event loop)."""
        self._need_total("reset_total_async")
        await self._reset_async(TOTAL)
