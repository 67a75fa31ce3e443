"""Which limiter a decorator makes: the bucket class for the algorithm, or the user's own.

A decorator makes its limiter when it decorates its first function (see
:class:`~limitor.decorators.Decorator`): a plain function gets the synchronous bucket
class, an ``async def`` its asynchronous twin; ``bucket_cls`` may name one of limitor's
classes, a class of the user's own that follows the limitor 0.6 protocols, or any
callable that returns a bucket (a ``functools.partial``, a factory).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from limitor._binding import ArgumentBinder
from limitor.base import AsyncBucket, Bucket, SyncBucket
from limitor.configs import BucketConfig
from limitor.decorators._callables import target_of
from limitor.decorators._forms import KeyOf
from limitor.decorators._options import DecoratorOptions, default_name
from limitor.decorators._shared import MakeLimiter
from limitor.engines import ENGINES, Engine
from limitor.errors import ConfigError, ConfigTypeError
from limitor.generic_cell_rate.core import (
    AsyncLeakyBucketGCRA,
    AsyncVirtualSchedulingGCRA,
    SyncLeakyBucketGCRA,
    SyncVirtualSchedulingGCRA,
)
from limitor.leaky_bucket.core import AsyncLeakyBucket, SyncLeakyBucket
from limitor.token_bucket.core import AsyncTokenBucket, SyncTokenBucket

__all__ = ("bucket_maker", "custom_key", "engine_type", "user_id_key")

_SYNC: dict[type[Engine[Any]], type[SyncBucket]] = {
    cls.engine_type: cls
    for cls in (SyncLeakyBucket, SyncTokenBucket, SyncVirtualSchedulingGCRA, SyncLeakyBucketGCRA)
}
_ASYNC: dict[type[Engine[Any]], type[AsyncBucket]] = {
    cls.engine_type: cls
    for cls in (
        AsyncLeakyBucket,
        AsyncTokenBucket,
        AsyncVirtualSchedulingGCRA,
        AsyncLeakyBucketGCRA,
    )
}


def engine_type(algorithm: object, bucket_cls: object) -> type[Engine[Any]] | None:
    """The engine named by ``algorithm`` or used by ``bucket_cls`` (None: the user's own).

    Raises:
        ConfigError: both given, an unknown algorithm, or a ``bucket_cls`` that is not
            callable.
    """
    if algorithm is not None and bucket_cls is not None:
        raise ConfigError("give algorithm= or bucket_cls=, not both")
    if bucket_cls is not None:
        if not callable(bucket_cls):
            raise ConfigTypeError(
                f"bucket_cls must be a bucket class or a callable returning a bucket, "
                f"got {bucket_cls!r}"
            )
        if isinstance(bucket_cls, type) and issubclass(bucket_cls, Bucket):
            return bucket_cls.engine_type
        return None
    name = "leaky_bucket" if algorithm is None else algorithm
    engine = ENGINES.get(name) if isinstance(name, str) else None
    if engine is None:
        raise ConfigError(f"algorithm must be one of {sorted(ENGINES)}, got {algorithm!r}")
    return engine


def bucket_maker(
    config: BucketConfig,
    options: DecoratorOptions,
    *,
    algorithm: str | None,
    bucket_cls: Callable[..., Any] | None,
    max_concurrent: int | None,
) -> MakeLimiter:
    """``make(func, is_async)`` for :func:`~limitor.rate_limit`, checked now.

    Raises:
        ConfigError: as :func:`engine_type`, or ``clock=`` with a bucket of the user's own.
    """
    engine = engine_type(algorithm, bucket_cls)
    clock = options.clock
    if engine is None:  # a class or factory of the user's own, following the 0.6 protocols
        if clock is not None:
            raise ConfigError(
                f"clock= works with limitor's bucket classes; give it to {bucket_cls!r} yourself"
            )
        factory = bucket_cls
        assert factory is not None

        def make_own(func: Any, is_async: bool) -> Any:
            arguments = options.limiter_arguments(func)
            if is_async and max_concurrent is not None:
                arguments["max_concurrent"] = max_concurrent
            return factory(config, **arguments)

        return make_own

    def make(func: Any, is_async: bool) -> Any:
        arguments = options.limiter_arguments(func)
        if is_async:
            if isinstance(bucket_cls, type) and issubclass(bucket_cls, AsyncBucket):
                async_cls: type[AsyncBucket] = bucket_cls
            else:  # a sync bucket class for an async function means its async twin
                async_cls = _ASYNC[engine]
            return async_cls(config, max_concurrent=max_concurrent, clock=clock, **arguments)
        if isinstance(bucket_cls, type) and issubclass(bucket_cls, SyncBucket):
            sync_cls: type[SyncBucket] = bucket_cls
        else:
            sync_cls = _SYNC[engine]
        return sync_cls(config, clock=clock, **arguments)

    return make


def user_id_key(func: Any) -> KeyOf:
    """The default per-user key: the ``user_id`` argument, by keyword or position.

    When the call gives none, the signature's default for ``user_id`` is the key.

    Raises:
        ConfigError: ``func`` has no ``user_id`` parameter (nor ``**kwargs`` to take one).
    """
    return param_key(func, "user_id")


def param_key(func: Any, param: str) -> KeyOf:
    """The key from the call's argument ``param``, by keyword or position.

    When the call gives none, the signature's default for ``param`` is the key.

    Raises:
        ConfigError: ``func`` has no parameter ``param`` (nor ``**kwargs`` to take one).
    """
    binder = ArgumentBinder(target_of(func))
    if param not in binder.parameters:
        if binder.takes_any_keyword:
            return lambda args, kwargs: kwargs.get(param)
        raise ConfigError(
            f"{default_name(func)} has no {param} parameter to key its limits by; "
            f"give key= (a function of the call's arguments) or add a {param} parameter"
        )
    value = binder.value
    default = binder.default(param)

    def key_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if param in kwargs:
            return kwargs[param]
        return value(param, args, kwargs, default)

    return key_of


def custom_key(func: Any, key: Callable[..., Hashable]) -> KeyOf:
    """``key`` called with the call's arguments bound to the function's signature."""
    normalize = ArgumentBinder(target_of(func)).normalize

    def key_of(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        bound_args, bound_kwargs = normalize(args, kwargs)
        return key(*bound_args, **bound_kwargs)

    return key_of
