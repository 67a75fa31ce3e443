"""What the integrations share: building their limiter, and optional imports."""

from __future__ import annotations

import importlib
from types import ModuleType

from limitor.configs import BucketConfig, as_rate
from limitor.errors import ConfigError, ConfigTypeError
from limitor.per_user import PerUserLimiter


def missing(module: str, extra: str, error: ImportError) -> ImportError:
    """The error for importing ``module`` without its extra installed."""
    return ImportError(
        f"{module} needs {error.name or 'a package'}: pip install 'limitor[{extra}]'",
        name=error.name,
    )


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` or raise an ImportError that says which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"{module} is needed here: install it with pip install 'limitor[{extra}]'"
        ) from error


def keyed_limiter(
    rate: str | BucketConfig | None,
    burst: float | None,
    limiter: PerUserLimiter | None,
    *,
    algorithm: str,
    max_keys: int,
    clock: object,
    name: str | None,
) -> PerUserLimiter:
    """The per-key limiter of an integration: ``limiter`` itself, or one made from ``rate``.

    Raises:
        ConfigError: neither or both of ``rate`` and ``limiter`` are given.
        ConfigTypeError: ``rate`` is not a rate string or a ``BucketConfig``, or
            ``limiter`` is not a :class:`~limitor.per_user.PerUserLimiter`.
    """
    if (rate is None) == (limiter is None):
        raise ConfigError(
            f"give either rate= (such as '10/s') or limiter=, got rate={rate!r}, "
            f"limiter={limiter!r}"
        )
    if limiter is not None:
        if not isinstance(limiter, PerUserLimiter):
            raise ConfigTypeError(f"limiter must be a PerUserLimiter, got {limiter!r}")
        if burst is not None:
            raise ConfigError(f"burst={burst!r} applies to rate=, not to an existing limiter")
        chosen = limiter
    else:
        config = as_rate(rate, burst)
        chosen = PerUserLimiter(config, algorithm=algorithm, max_users=max_keys, clock=clock)
    if name is not None and name != chosen.name:
        chosen.name = name  # a limit in a shared backend is named when it is made
    return chosen
