"""Redis errors as the app's documented exceptions, with messages that say what to fix.

Every path to Redis (one call in :mod:`.calls`, a batch in :mod:`.batches`,
a plain command in the api or a management command) turns a redis-py error
into :class:`~.exceptions.RedisUnavailable` or
:class:`~.exceptions.SessionStoreError` here, so the messages are worded once.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import redis.exceptions as rexc

from .conf import charon_settings
from .exceptions import RedisUnavailable, SessionStoreError
from .keyspace import acl_key_pattern, key_prefix
from .library import FUNCTION_COMMANDS, LIBRARY

if TYPE_CHECKING:
    from collections.abc import Iterator

#: What redis-py raises: its Cluster client's RedisClusterException ("cannot
#: be connected") is no RedisError, so ``except RedisError`` alone lets it through.
REDIS_ERRORS: tuple[type[Exception], ...] = (rexc.RedisError, rexc.RedisClusterException)

_UNAVAILABLE = (
    rexc.ConnectionError,
    rexc.TimeoutError,
    rexc.ClusterDownError,
    rexc.TryAgainError,
    rexc.ReadOnlyError,
    rexc.OutOfMemoryError,
    rexc.RedisClusterException,
)

#: How servers word a command that a function may not run under the caller's
#: ACL (a plain error reply, not NOPERM): Redis 7, then Redis 8 and Valkey 8+.
_SCRIPT_ACL_WORDINGS = (
    "user executing the script can't run",
    "acl failure in script",
)


def describe_url(url: str) -> str:
    """Return ``url`` with any password replaced, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def describe_target() -> str:
    """Return a human description of where sessions are stored."""
    s = charon_settings
    if s.CONNECTION_FACTORY:
        return f"the client made by {s.CONNECTION_FACTORY}"
    if s.CACHE_ALIAS:
        return f"the connection of cache {s.CACHE_ALIAS!r}"
    kind = "Redis Cluster" if s.CLUSTER else "Redis"
    return f"{kind} at {describe_url(s.URL)}"


def is_missing(exc: BaseException) -> bool:
    """Return whether ``exc`` says the library is not loaded (also for pipelined calls)."""
    return isinstance(exc, rexc.ResponseError) and "function not found" in str(exc).lower()


class LibraryMissing(SessionStoreError):  # noqa: N818 - a signal to reload
    """The library vanished while batches ran; load it and run again (they are idempotent)."""


def _is_script_acl_error(exc: BaseException) -> bool:
    if not isinstance(exc, rexc.ResponseError):
        return False
    message = str(exc).lower()
    return any(wording in message for wording in _SCRIPT_ACL_WORDINGS)


def translate(exc: BaseException) -> SessionStoreError:
    """Return the documented exception for a Redis error, with a clear message."""
    s = charon_settings
    reason = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, (rexc.AuthenticationError, rexc.AuthorizationError)):
        return SessionStoreError(
            f"Redis rejected the session store's credentials for {describe_target()} ({reason})."
        )
    if isinstance(exc, rexc.NoPermissionError) or _is_script_acl_error(exc):
        return SessionStoreError(
            f"The Redis user of the session store lacks a permission ({reason}). It needs "
            f"FCALL and FCALL_RO on keys '{acl_key_pattern(key_prefix())}', the commands the "
            f"functions run there ({', '.join(FUNCTION_COMMANDS)}: Redis checks them against "
            "the caller's ACL too), and FUNCTION LOAD unless the library is loaded ahead of "
            "time (see the operations docs)."
        )
    if isinstance(exc, _UNAVAILABLE):
        return RedisUnavailable(
            f"Session store unavailable: {describe_target()} did not answer in time or "
            f"refused the call ({reason}); connect timeout {s.SOCKET_CONNECT_TIMEOUT}s, "
            f"socket timeout {s.SOCKET_TIMEOUT}s."
        )
    return SessionStoreError(f"Unexpected reply from {describe_target()}: {reason}")


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Raise the documented exception (:func:`translate`) for a Redis error in the block."""
    try:
        yield
    except REDIS_ERRORS as exc:
        raise translate(exc) from exc


def missing_error() -> SessionStoreError:
    """Return the error for a missing library that the app may not load."""
    return SessionStoreError(
        f"The Redis function library {LIBRARY} is not loaded on {describe_target()} and "
        "LOAD_FUNCTIONS is off. Load it ahead of time: "
        "python -m django_charon_sessions.library > charon.lua; "
        'redis-cli FUNCTION LOAD REPLACE "$(cat charon.lua)".'
    )
