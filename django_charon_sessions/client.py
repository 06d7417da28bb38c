"""Redis connections, sync and async, made from ``CHARON_SESSIONS``, and one round trip on them.

Clients are created on first use and kept per process (sync) or per event
loop (async, because a ``redis.asyncio`` connection belongs to the loop that
opened it). Changing the relevant settings, as ``override_settings`` does,
drops them.

:func:`exchange` (and :func:`aexchange`) sends commands on a connection of a
client's pool in one write and reads their replies, skipping redis-py's
generic command path (retries, hooks, response callbacks): the engine's
single calls and the batches of cleanup and import share it. The pool still
guards against forks and replaces a connection that died while idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import weakref
from typing import TYPE_CHECKING, Any, TypeAlias

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
import redis.exceptions as rexc
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string
from redis.backoff import NoBackoff
from redis.retry import Retry

from .conf import charon_settings
from .errors import REDIS_ERRORS, translate

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

SyncClient: TypeAlias = "redis.Redis | redis.cluster.RedisCluster"
AsyncClient: TypeAlias = "redis.asyncio.Redis | redis.asyncio.cluster.RedisCluster"
#: A command as sent: its name and arguments.
Command: TypeAlias = "tuple[Any, ...]"

_sync_client: SyncClient | None = None
# Whether this module built _sync_client (and so may close it).
_owned = False
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncClient] = (
    weakref.WeakKeyDictionary()
)


def _options() -> dict[str, Any]:
    s = charon_settings
    options: dict[str, Any] = {
        "socket_timeout": s.SOCKET_TIMEOUT,
        "socket_connect_timeout": s.SOCKET_CONNECT_TIMEOUT,
    }
    if s.MAX_CONNECTIONS:
        options["max_connections"] = s.MAX_CONNECTIONS
    return options


def _no_retry() -> Retry:
    # A write that timed out may still have been applied; replaying it blindly
    # could, for example, turn a create into a false collision. Fail instead.
    return Retry(NoBackoff(), 0)


def _factory() -> Callable[[bool], Any] | None:
    path = charon_settings.CONNECTION_FACTORY
    return import_string(path) if path else None


def _cache_client(alias: str) -> redis.Redis:
    from django.core.cache import caches

    cache: Any = caches[alias]
    if hasattr(cache, "client") and hasattr(cache.client, "get_client"):
        client = cache.client.get_client(write=True)  # django-redis
    elif hasattr(cache, "_cache") and hasattr(cache._cache, "get_client"):
        client = cache._cache.get_client(write=True)  # django.core.cache RedisCache
    else:
        raise ImproperlyConfigured(
            f"CHARON_SESSIONS['CACHE_ALIAS'] names cache {alias!r}, which is not a "
            "Redis cache (django-redis or django.core.cache.backends.redis.RedisCache)."
        )
    if not isinstance(client, redis.Redis):
        raise ImproperlyConfigured(
            f"Cache {alias!r} did not give a redis.Redis client; use URL instead."
        )
    return client


def _check_bytes(client: Any) -> None:
    pool = getattr(client, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", {}) if pool else {}
    if kwargs.get("decode_responses"):
        raise ImproperlyConfigured(
            "The Redis client for sessions decodes responses to str; session data is "
            "binary. Use a client made with decode_responses=False."
        )


def _cluster_client(url: str) -> redis.cluster.RedisCluster:
    # Unlike the other clients, redis-py's sync Cluster client connects as it
    # is made, and says it cannot with RedisClusterException, no RedisError.
    try:
        return redis.cluster.RedisCluster.from_url(url, **_options())
    except REDIS_ERRORS as exc:
        raise translate(exc) from exc


def get_client() -> SyncClient:
    """Return the process's sync client for the session store."""
    global _sync_client, _owned
    if _sync_client is None:
        s = charon_settings
        factory = _factory()
        client: SyncClient
        if factory is not None:
            client = factory(False)
        elif s.CACHE_ALIAS:
            client = _cache_client(s.CACHE_ALIAS)
        elif s.CLUSTER:
            client = _cluster_client(s.URL)
        else:
            client = redis.Redis.from_url(s.URL, retry=_no_retry(), **_options())
        _check_bytes(client)
        _sync_client = client
        _owned = factory is None and not s.CACHE_ALIAS
    return _sync_client


# Connection settings that carry over from a cache's sync pool to asyncio.
_PORTABLE = (
    "host", "port", "path", "db", "username", "password", "socket_timeout",
    "socket_connect_timeout", "client_name", "health_check_interval",
    "ssl_keyfile", "ssl_certfile", "ssl_cert_reqs", "ssl_ca_certs", "ssl_ca_data",
    "ssl_check_hostname",
)  # fmt: skip


def _async_from_cache(alias: str) -> redis.asyncio.Redis:
    sync_pool = _cache_client(alias).connection_pool
    source = sync_pool.connection_kwargs
    kwargs = {k: source[k] for k in _PORTABLE if k in source}
    cls = sync_pool.connection_class
    if issubclass(cls, redis.UnixDomainSocketConnection):
        async_cls: type[Any] = redis.asyncio.UnixDomainSocketConnection
    elif issubclass(cls, redis.SSLConnection):
        async_cls = redis.asyncio.SSLConnection
    else:
        async_cls = redis.asyncio.Connection
    pool = redis.asyncio.ConnectionPool(connection_class=async_cls, **kwargs)
    return redis.asyncio.Redis(connection_pool=pool)


def get_async_client() -> AsyncClient:
    """Return the async client of the running event loop."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        s = charon_settings
        factory = _factory()
        if factory is not None:
            client = factory(True)
        elif s.CACHE_ALIAS:
            client = _async_from_cache(s.CACHE_ALIAS)
        elif s.CLUSTER:
            client = redis.asyncio.cluster.RedisCluster.from_url(s.URL, **_options())
        else:
            client = redis.asyncio.Redis.from_url(s.URL, retry=_no_retry(), **_options())
        _check_bytes(client)
        _async_clients[loop] = client
    return client


def is_cluster(client: Any) -> bool:
    return isinstance(client, (redis.cluster.RedisCluster, redis.asyncio.cluster.RedisCluster))


def reset() -> None:
    """Forget all clients, so the next call builds them from current settings."""
    global _sync_client, _owned
    client, _sync_client = _sync_client, None
    if client is not None and _owned:
        # Closing a broken client must not fail the settings change.
        with contextlib.suppress(Exception):
            client.close()
    _owned = False
    _async_clients.clear()


@receiver(setting_changed)
def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in {"CHARON_SESSIONS", "CACHES"}:
        reset()


# -- one round trip -------------------------------------------------------------

# hiredis is optional; imported by name so type checking needs no stubs for it.
try:
    _hiredis_pack: Any = importlib.import_module("hiredis").pack_command
except ImportError:  # pragma: no cover - tested without hiredis in CI's lint env only
    _hiredis_pack = None

# redis-py before 5.3 wants a command name in get_connection().
_NAME_ARGS: tuple[str, ...] = (
    ("FCALL",) if tuple(int(p) for p in redis.__version__.split(".")[:2]) < (5, 3) else ()
)


def _pack(conn: Any, commands: Sequence[Command]) -> Any:
    # hiredis packs a whole command in C; redis-py's own packer (also what
    # its hiredis serializer does first) looks at every argument in Python.
    if _hiredis_pack is None:
        return conn.pack_commands(commands)
    if len(commands) == 1:
        return [_hiredis_pack(commands[0])]
    return [b"".join([_hiredis_pack(command) for command in commands])]


def exchange(client: redis.Redis, commands: Sequence[Command]) -> list[Any]:
    """Send ``commands`` to a standalone server in one write; return their replies in order.

    An error reply raises ``ResponseError``. The connection is disconnected
    if a reply may be left unread (after any other failure, or an error reply
    with more to come); it always goes back to the pool.
    """
    pool: Any = client.connection_pool
    conn = pool.get_connection(*_NAME_ARGS)
    try:
        conn.send_packed_command(_pack(conn, commands), check_health=False)
        return [conn.read_response() for _ in commands]
    except rexc.ResponseError:
        if len(commands) > 1:
            conn.disconnect()
        raise
    except BaseException:
        conn.disconnect()
        raise
    finally:
        pool.release(conn)


async def aexchange(client: redis.asyncio.Redis, commands: Sequence[Command]) -> list[Any]:
    """Async twin of :func:`exchange`."""
    pool: Any = client.connection_pool
    try:
        conn = await pool.get_connection(*_NAME_ARGS)
    except (TypeError, AttributeError) as exc:
        if not transport_gone(exc):
            raise
        raise rexc.ConnectionError(f"connection lost while connecting ({exc})") from exc
    try:
        await conn.send_packed_command(_pack(conn, commands), check_health=False)
        return [await conn.read_response() for _ in commands]
    except rexc.ResponseError:
        if len(commands) > 1:
            await conn.disconnect()
        raise
    except (TypeError, AttributeError) as exc:
        await conn.disconnect()
        if not transport_gone(exc):
            raise
        raise rexc.ConnectionError(f"connection lost while sending ({exc})") from exc
    except BaseException:  # including cancellation: a reply may be left unread
        await conn.disconnect()
        raise
    finally:
        await pool.release(conn)


def transport_gone(exc: Exception) -> bool:
    """Return whether ``exc`` is how an asyncio connection fails once the server went away.

    redis-py's asyncio connection fails this way (older releases more often)
    when the server goes away while it connects or writes: its transport is
    already gone (None). That is a lost connection, nothing else.
    """
    return "'NoneType' object" in str(exc)
