"""The Redis function library: its versioned source, loading, and error translation.

The library's name and each function's name carry a hash of the Lua source,
so a new release never calls an old library by mistake. The library is
loaded on first use: when Redis answers "Function not found" (a restart, a
failover to a server without it, ``FUNCTION FLUSH``), it is loaded once and
the call retried once (:mod:`~django_charon_sessions.calls` sends every
call). With ``LOAD_FUNCTIONS`` off, an operator loads it ahead of time instead.
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from typing import TYPE_CHECKING, Any

import redis.exceptions as rexc

from .client import describe_target
from .conf import charon_settings
from .exceptions import RedisUnavailable, SessionStoreError

if TYPE_CHECKING:
    from .client import AsyncClient, SyncClient

_TEMPLATE = resources.files(__package__).joinpath("lua/charon.lua").read_text("utf-8")

#: A hash of the Lua source: part of the library's and functions' names.
VERSION = hashlib.sha256(_TEMPLATE.encode("utf-8")).hexdigest()[:12]
#: The library's name in ``FUNCTION LIST``.
LIBRARY = f"charon_{VERSION}"
#: The source as sent with ``FUNCTION LOAD``.
SOURCE = _TEMPLATE.replace("__VERSION__", VERSION)


def function_name(short: str) -> str:
    """Return the full name of library function ``short`` (e.g. "load")."""
    return f"{LIBRARY}_{short}"


_UNAVAILABLE = (
    rexc.ConnectionError,
    rexc.TimeoutError,
    rexc.ClusterDownError,
    rexc.TryAgainError,
    rexc.ReadOnlyError,
    rexc.OutOfMemoryError,
    rexc.RedisClusterException,
)


def is_missing(exc: BaseException) -> bool:
    """Return whether ``exc`` says the library is not loaded (also for pipelined calls)."""
    return isinstance(exc, rexc.ResponseError) and "function not found" in str(exc).lower()


class LibraryMissing(Exception):  # noqa: N818 - a signal to reload, not an error
    """The library vanished during a pipelined run; load it and run again."""


#: The commands the library's functions run; the app's Redis user needs them too
#: (Redis checks them against the caller's ACL). Read from the source itself.
FUNCTION_COMMANDS = tuple(
    sorted(set(re.findall(r"(?:redis\.p?call|call_chunked)\('([A-Z]+)'", SOURCE)))
)


#: How servers word a command that a function may not run under the caller's
#: ACL (a plain error reply, not NOPERM): Redis 7, then Redis 8 and Valkey 8+.
_SCRIPT_ACL_WORDINGS = (
    "user executing the script can't run",
    "acl failure in script",
)


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
            f"FCALL and FCALL_RO on keys '{s.KEY_PREFIX}:*', the commands the functions run "
            f"there ({', '.join(FUNCTION_COMMANDS)}: Redis checks them against the "
            "caller's ACL too), and FUNCTION LOAD unless the library is loaded ahead of "
            "time (see the operations docs)."
        )
    if isinstance(exc, _UNAVAILABLE):
        return RedisUnavailable(
            f"Session store unavailable: {describe_target()} did not answer in time or "
            f"refused the call ({reason}); connect timeout {s.SOCKET_CONNECT_TIMEOUT}s, "
            f"socket timeout {s.SOCKET_TIMEOUT}s."
        )
    return SessionStoreError(f"Unexpected reply from {describe_target()}: {reason}")


def missing_error() -> SessionStoreError:
    """Return the error for a missing library that the app may not load."""
    return SessionStoreError(
        f"The Redis function library {LIBRARY} is not loaded on {describe_target()} and "
        "LOAD_FUNCTIONS is off. Load it ahead of time: "
        "python -m django_charon_sessions.functions > charon.lua; "
        'redis-cli FUNCTION LOAD REPLACE "$(cat charon.lua)".'
    )


def load_library(client: SyncClient) -> None:
    """Load the library on every primary (replacing an identical copy)."""
    try:
        client.function_load(SOURCE, replace=True)
    except rexc.RedisError as exc:
        raise translate(exc) from exc


async def aload_library(client: AsyncClient) -> None:
    """Async twin of :func:`load_library`."""
    try:
        await client.function_load(SOURCE, replace=True)
    except rexc.RedisError as exc:
        raise translate(exc) from exc


def libraries_per_node(client: SyncClient) -> dict[str, set[str]]:
    """Return the names of the function libraries loaded on each server.

    A standalone server is named "redis"; a Cluster answers per primary.
    """
    listing: Any = client.function_list()
    per_node = listing if isinstance(listing, dict) else {"redis": listing}
    out: dict[str, set[str]] = {}
    for node, entries in per_node.items():
        names = set()
        for entry in entries or []:
            pairs = dict(zip(entry[::2], entry[1::2], strict=False))
            name = pairs.get(b"library_name", pairs.get("library_name"))
            if name is not None:
                names.add(name.decode() if isinstance(name, bytes) else str(name))
        out[str(node)] = names
    return out


def get(client: SyncClient, key: str) -> bytes | None:
    """GET ``key``, with Redis errors turned into the documented exceptions."""
    try:
        value = client.get(key)
    except rexc.RedisError as exc:
        raise translate(exc) from exc
    return value.encode() if isinstance(value, str) else value


async def aget(client: AsyncClient, key: str) -> bytes | None:
    """Async twin of :func:`get`."""
    try:
        value = await client.get(key)
    except rexc.RedisError as exc:
        raise translate(exc) from exc
    return value.encode() if isinstance(value, str) else value


if __name__ == "__main__":  # pragma: no cover - an operator's helper
    print(SOURCE)
