"""The per-key limiter of an integration, made from the keywords it was given.

The httpx transports and the ASGI middleware take the same keywords for their limiter
(``rate``, ``burst``, ``limiter``, ``algorithm``, ``name``, ``clock``); each declares them
in its own ``TypedDict`` (in the order its signature shows) and builds its limiter here.
"""

from __future__ import annotations

from typing import TypedDict

from limitor.configs import BucketConfig
from limitor.contrib._common import keyed_limiter
from limitor.per_user import PerUserLimiter


class KeyedLimiterKeywords(TypedDict, total=False):
    """The keywords an integration's per-key limiter is made from."""

    rate: str | BucketConfig | None
    burst: float | None
    limiter: PerUserLimiter | None
    algorithm: str
    name: str | None
    clock: object


def limiter_from(options: KeyedLimiterKeywords, max_keys: int) -> PerUserLimiter:
    """``options["limiter"]``, or a limiter of ``options["rate"]`` keeping ``max_keys`` keys.

    Args:
        options: the integration's keywords, every one given (:meth:`Keywords.fill`).
        max_keys: how many keys' buckets are kept.

    Raises:
        ConfigError: neither or both of ``rate`` and ``limiter`` are given.
        ConfigTypeError: ``rate`` or ``limiter`` is of the wrong type.
    """
    return keyed_limiter(
        options["rate"],
        options["burst"],
        options["limiter"],
        algorithm=options["algorithm"],
        max_keys=max_keys,
        clock=options["clock"],
        name=options["name"],
    )
