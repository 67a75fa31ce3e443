"""The connection to a Redis server or cluster.

Clients, URLs, Redis Cluster and pools; running the scripts (sync, and async with an
undo when a caller is cancelled); and the one wrapper that turns a driver error into
:class:`~limitor.errors.BackendError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
import anyio.lowlevel
import anyio.to_thread

from limitor.backends._keys import redis_escape
from limitor.backends.base import (
    LimitSpec,
)
from limitor.backends.redis._scripts import Script
from limitor.backends.redis._store import RedisStore, RedisTotalStore
from limitor.clock import Clock
from limitor.errors import BackendError, ConfigError, ConfigTypeError

try:
    import redis
    import redis.asyncio
    import redis.asyncio.connection
    import redis.asyncio.retry
    import redis.cluster
    import redis.connection
    import redis.exceptions
    import redis.retry
    from redis.backoff import NoBackoff
except ImportError as error:  # pragma: no cover - exercised by a test that hides redis
    raise ImportError(
        "limitor.backends.redis needs the redis package: pip install 'limitor[redis]'"
    ) from error

__all__ = ("DEFAULT_PREFIX", "DEFAULT_TIMEOUT", "RedisBackend")

DEFAULT_PREFIX = "limitor:"
"""Every key starts with this unless ``prefix=`` says otherwise."""
DEFAULT_TIMEOUT = 0.5
"""Seconds to connect and to wait for a reply before a call fails with BackendError."""

DRIVER_ERRORS = (redis.exceptions.RedisError, OSError)
_REDIS_MAJOR = int(redis.__version__.split(".")[0])

Undo = Callable[[bytes], "tuple[Script, Sequence[str], Sequence[str]] | None"]
"""Given a call's reply, the call that takes back what it did (None: nothing to undo)."""


def _cluster_url(url: str) -> str | None:
    """``redis://`` for a ``redis+cluster://`` (or ``rediss+cluster://``) URL, else None."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme.endswith("+cluster"):
        return f"{scheme[: -len('+cluster')]}://{rest}"
    return None


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit((parts.scheme, user + host, parts.path, parts.query, parts.fragment))


def _no_retry() -> redis.retry.Retry:
    return redis.retry.Retry(NoBackoff(), 0)


def _async_pool_from(pool: Any) -> Any:
    """A redis.asyncio connection pool to the server a sync pool connects to."""
    kwargs = dict(pool.connection_kwargs)
    kwargs.pop("redis_connect_func", None)
    kwargs["retry"] = redis.asyncio.retry.Retry(NoBackoff(), 0)
    connection_class = getattr(
        redis.asyncio.connection,
        pool.connection_class.__name__,
        redis.asyncio.connection.Connection,
    )
    return redis.asyncio.ConnectionPool(connection_class=connection_class, **kwargs)


def _sync_pool_from(pool: Any) -> Any:
    """A sync connection pool to the server a redis.asyncio pool connects to."""
    kwargs = dict(pool.connection_kwargs)
    kwargs.pop("redis_connect_func", None)
    kwargs["retry"] = _no_retry()
    connection_class = getattr(
        redis.connection, pool.connection_class.__name__, redis.connection.Connection
    )
    return redis.ConnectionPool(connection_class=connection_class, **kwargs)


async def _closer(client: Any) -> AsyncIterator[None]:
    """Closes ``client`` when its event loop shuts its async generators down."""
    try:
        yield
    finally:
        await client.aclose(close_connection_pool=True)


class RedisBackend:
    """Limits kept on a Redis (or Valkey, or Redis Cluster) server, shared by every process.

    Each decision is one Lua script call that reads the server's clock, decides and
    commits atomically; keys expire by themselves once their bucket is full. One backend
    object serves sync callers, asyncio tasks (a ``redis.asyncio`` client per event loop)
    and trio tasks (the sync client in a worker thread).

    Args:
        client: a ``redis.Redis``, ``redis.asyncio.Redis`` or ``redis.cluster.RedisCluster``.
            Its retry policy is left as it is: configure it not to retry on timeouts (a
            retried script may commit twice); :meth:`from_url` does that for you.
        prefix: the start of every key this backend writes.

    Example::

        backend = RedisBackend.from_url("redis://localhost:6379/0")
        bucket = SyncLeakyBucket(BucketConfig(20, 1), backend=backend, name="api")
    """

    __slots__ = (
        "__weakref__",
        "_async_clients",
        "_async_factory",
        "_async_given",
        "_background",
        "_sync",
        "cluster",
        "label",
        "prefix",
    )

    def __init__(self, client: Any, *, prefix: str = DEFAULT_PREFIX) -> None:
        if not isinstance(prefix, str):
            raise ConfigTypeError(f"prefix must be a str, got {prefix!r}")
        if "{" in prefix or "}" in prefix:
            raise ConfigError(
                f"prefix must not hold '{{' or '}}' (the hash tag is the limit's), got {prefix!r}"
            )
        self.prefix = prefix
        """The start of every key."""
        self._async_clients: weakref.WeakKeyDictionary[Any, tuple[Any, Any]] = (
            weakref.WeakKeyDictionary()
        )
        self._async_given: Any = None
        self._background: set[asyncio.Task[Any]] = set()
        self._async_factory: Callable[[], Any] | None = None
        self._sync: Any
        if isinstance(client, redis.cluster.RedisCluster):
            self.cluster = True
            self._sync = client
            nodes: Any = client.get_nodes()  # type: ignore[no-untyped-call]
            where = f"{nodes[0].host}:{nodes[0].port}" if nodes else "?"
            self.label = f"redis cluster {where}"
        elif isinstance(client, redis.asyncio.Redis):
            self.cluster = False
            self._async_given = client
            self._sync = redis.Redis(connection_pool=_sync_pool_from(client.connection_pool))
            self.label = f"redis {self._describe(client.connection_pool)}"
        elif isinstance(client, redis.Redis):
            self.cluster = False
            self._sync = client
            pool = client.connection_pool
            self._async_factory = lambda: redis.asyncio.Redis(
                connection_pool=_async_pool_from(pool)
            )
            self.label = f"redis {self._describe(pool)}"
        else:
            raise ConfigTypeError(
                "client must be a redis.Redis, redis.asyncio.Redis or "
                f"redis.cluster.RedisCluster, got {client!r}"
            )

    @staticmethod
    def _describe(pool: Any) -> str:
        kwargs = pool.connection_kwargs
        if "path" in kwargs:
            return f"unix://{kwargs['path']}"
        return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        cluster: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        **options: Any,
    ) -> RedisBackend:
        """A backend for a server given by URL, with short timeouts and no blind retries.

        Args:
            url: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS),
                ``unix:///path/to/socket``, or ``redis+cluster://host:port`` (and
                ``rediss+cluster://``) for a Redis Cluster reached through any node.
            prefix: the start of every key.
            cluster: treat ``url`` as a node of a Redis Cluster.
            timeout: seconds to connect and to wait for each reply.
            **options: passed on to the redis-py client.
        """
        if not isinstance(url, str):
            raise ConfigTypeError(f"url must be a str, got {url!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigError(f"timeout must be a positive number of seconds, got {timeout!r}")
        plain = _cluster_url(url)
        if plain is not None:
            url, cluster = plain, True
        settings: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "retry": _no_retry(),
            **options,
        }
        try:
            if cluster:
                if _REDIS_MAJOR < 6:  # since 6, `retry` is the cluster's own retry policy
                    settings.setdefault("cluster_error_retry_attempts", 0)
                client: Any = redis.cluster.RedisCluster.from_url(url, **settings)
            else:
                client = redis.Redis.from_url(url, **settings)
        except DRIVER_ERRORS as error:
            raise BackendError(
                f"cannot connect: {type(error).__name__}: {error}", f"redis {_safe_url(url)}"
            ) from error
        except ValueError as error:
            raise ConfigError(f"invalid Redis URL {_safe_url(url)!r}: {error}") from error
        backend = cls(client, prefix=prefix)
        if not cluster:
            async_settings = dict(settings, retry=redis.asyncio.retry.Retry(NoBackoff(), 0))
            backend._async_factory = lambda: redis.asyncio.Redis.from_url(url, **async_settings)
        return backend

    def bind(self, spec: LimitSpec, clock: Clock) -> RedisStore:
        """A store for ``spec`` on this server; ``spec.name`` must be set (the key)."""
        if spec.totals:
            return RedisTotalStore(self, spec, clock)
        return RedisStore(self, spec, clock)

    @property
    def client(self) -> Any:
        """The sync client (``redis.Redis`` or ``redis.cluster.RedisCluster``)."""
        return self._sync

    def error(self, error: BaseException) -> BackendError:
        """The BackendError for a driver error: the one place driver errors are wrapped."""
        return BackendError(f"{type(error).__name__}: {error}", self.label)

    def run(self, script: Script, keys: Sequence[str], args: Sequence[str]) -> bytes:
        """Run ``script`` on ``keys`` (EVALSHA, then EVAL when the server lost it)."""
        execute = self._sync.execute_command
        try:
            try:
                reply = execute("EVALSHA", script.sha, len(keys), *keys, *args)
            except redis.exceptions.NoScriptError:
                reply = execute("EVAL", script.source, len(keys), *keys, *args)
        except DRIVER_ERRORS as error:
            raise self.error(error) from error
        if type(reply) is str:  # a client made with decode_responses=True
            return reply.encode()
        return reply  # type: ignore[no-any-return]

    async def _asyncio_client(self) -> Any:
        """This event loop's redis.asyncio client, made on first use (None: use threads)."""
        if self._async_given is not None:
            return self._async_given
        if self._async_factory is None:
            return None
        loop = asyncio.get_running_loop()
        entry = self._async_clients.get(loop)
        if entry is None:
            client = self._async_factory()
            closer = _closer(client)
            entry = self._async_clients.setdefault(loop, (client, closer))
            if entry[1] is closer:
                await closer.__anext__()  # known to the loop now: closed when it shuts down
        return entry[0]

    async def arun(
        self,
        script: Script,
        keys: Sequence[str],
        args: Sequence[str],
        undo: Undo | None = None,
    ) -> bytes:
        """:meth:`run` without blocking the event loop; never interrupted half-way.

        On asyncio the loop's own client runs the call in a task of its own: a caller
        cancelled meanwhile (by anyio or natively) leaves at once, the call still ends
        cleanly (within the timeout), and the call ``undo(reply)`` names then runs in the
        background to take back what the caller will not use. On trio (and for a
        cluster) the sync client runs in a worker thread, which a cancellation waits for;
        the undo call then runs before the cancellation goes on.
        """
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            client = None
        else:
            client = await self._asyncio_client()
        if client is None:
            reply = await anyio.to_thread.run_sync(partial(self.run, script, keys, args))
            if undo is not None:
                try:
                    await anyio.lowlevel.checkpoint_if_cancelled()
                except anyio.get_cancelled_exc_class():
                    call = undo(reply)
                    if call is not None:
                        with anyio.CancelScope(shield=True):
                            await self.arun(*call)
                    raise
            return reply
        coro = self._aexecute(client, script, keys, args)
        if sys.version_info >= (3, 12):  # sent at once, not on the loop's next turn
            task = asyncio.Task(coro, loop=loop, eager_start=True)
        else:
            task = loop.create_task(coro)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(partial(self._after_abandon, undo))
            raise

    def _after_abandon(self, undo: Undo | None, task: asyncio.Task[bytes]) -> None:
        """When a call its caller left is over: start its undo call, or drop its error."""
        if task.cancelled() or task.exception() is not None:  # retrieved: never reported
            return
        call = None if undo is None else undo(task.result())
        if call is not None:
            background = asyncio.ensure_future(self.arun(*call))
            self._background.add(background)
            background.add_done_callback(_forget(self._background))

    async def _aexecute(
        self, client: Any, script: Script, keys: Sequence[str], args: Sequence[str]
    ) -> bytes:
        execute = client.execute_command
        try:
            try:
                reply = await execute("EVALSHA", script.sha, len(keys), *keys, *args)
            except redis.exceptions.NoScriptError:
                reply = await execute("EVAL", script.source, len(keys), *keys, *args)
        except DRIVER_ERRORS as error:
            raise self.error(error) from error
        if type(reply) is str:  # a client made with decode_responses=True
            return reply.encode()
        return reply  # type: ignore[no-any-return]

    def delete(self, keys: Sequence[str], name: str | None = None, *, tagged: bool = False) -> None:
        """Delete ``keys``, and with ``name`` every key of that limit's users.

        ``tagged``: the limit's keys all carry the tag ``{name}`` (a limit under totals).
        """
        client = self._sync
        try:
            for key in keys:  # one by one: on a cluster they may live on different nodes
                client.delete(key)
            if name is not None:
                # The name is escaped (no ':' in it): limit "a" never matches limit "a:b".
                escaped = _glob_escape(redis_escape(name))
                if tagged:
                    pattern = self.prefix + "{" + escaped + "}*"
                else:
                    pattern = self.prefix + "{" + escaped + ":*}*"
                for found in client.scan_iter(match=pattern, count=1000):
                    client.delete(found)
        except DRIVER_ERRORS as error:
            raise self.error(error) from error

    def close(self) -> None:
        """Close the sync client's connections (the asyncio clients close with their loops)."""
        with contextlib.suppress(*DRIVER_ERRORS):
            self._sync.close()

    async def aclose(self) -> None:
        """Close this event loop's asyncio client now (it is remade if used again)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        entry = self._async_clients.pop(loop, None)
        if entry is not None:
            await entry[0].aclose(close_connection_pool=True)

    def __repr__(self) -> str:
        return f"RedisBackend({self.label!r}, prefix={self.prefix!r})"


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def _forget(tasks: set[asyncio.Task[Any]]) -> Callable[[asyncio.Task[Any]], None]:
    def done(task: asyncio.Task[Any]) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()

    return done
