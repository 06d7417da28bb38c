"""Deploy checks (``manage.py check --deploy``): Redis is ready for the sessions.

They talk to Redis: they confirm it is reachable, runs Redis 7.0 or newer (or
Valkey 7.2 or newer, which reports itself as Redis 7.2), holds or accepts the
function library, and lets the app's Redis user save, load, list and delete a
throwaway session through the engine and the api.

They carry a tag of their own (:data:`REDIS_TAG`), not Django's ``database``
tag: Django runs ``database``-tagged checks only when ``--database`` is given,
so ``check --deploy`` alone would skip them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, get_args

from django.contrib.auth import SESSION_KEY
from django.core.checks import CheckMessage, Error
from django.core.checks import register as register_check
from redis.exceptions import NoPermissionError

from . import calls
from . import library as fn
from .api import list_sessions
from .checks import check_settings
from .client import get_client
from .conf import charon_settings
from .engine import SessionStore
from .errors import REDIS_ERRORS, describe_target
from .exceptions import RedisUnavailable, SessionStoreError
from .keyspace import acl_key_pattern, key_prefix

if TYPE_CHECKING:
    from collections.abc import Sequence

#: The tag of the checks that talk to Redis: ``manage.py check --deploy`` runs
#: them with the others, ``check --deploy --tag charon_redis`` alone.
REDIS_TAG = "charon_redis"

#: The ids the deploy checks report.
DeployCheckId = Literal[
    "django_charon_sessions.E101",
    "django_charon_sessions.E102",
    "django_charon_sessions.E103",
    "django_charon_sessions.E104",
    "django_charon_sessions.E105",
]
DEPLOY_CHECK_IDS: tuple[str, ...] = get_args(DeployCheckId)

#: The oldest server version the engine runs on: functions arrived in Redis 7.0.
MIN_REDIS_VERSION = (7, 0)


def register() -> None:
    """Register the deploy checks (called from ``AppConfig.ready()``)."""
    register_check(check_redis, REDIS_TAG, deploy=True)


def _error(check: DeployCheckId, msg: str, hint: str) -> Error:
    return Error(msg, hint=hint, id=check)


#: A Redis that cannot be reached or used, in the app's words or redis-py's.
_FAILED: tuple[type[Exception], ...] = (SessionStoreError, *REDIS_ERRORS)


def check_redis(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Deploy check: Redis is reachable, recent enough, and has the library."""
    if check_settings():
        return []  # the settings errors say what to fix first
    try:
        client = get_client()
        try:
            errors = _check_versions(client.info("server"))
        except NoPermissionError:
            errors = []  # INFO is not granted: Redis answered, the version is unknown
    except _FAILED as exc:
        return [_unreachable(exc, "Start Redis or correct CHARON_SESSIONS.")]
    if errors:
        return errors
    try:
        try:
            libraries = _libraries(client)
        except NoPermissionError:
            libraries = {fn.LIBRARY}  # FUNCTION LIST not granted: the probe below tells
        if fn.LIBRARY not in libraries:
            if not charon_settings.LOAD_FUNCTIONS:
                return [
                    _error(
                        "django_charon_sessions.E104",
                        f"The function library {fn.LIBRARY} is not loaded and LOAD_FUNCTIONS "
                        "is False.",
                        "Load it ahead of time as described in the operations docs.",
                    )
                ]
            calls.load_library(client)
    except _FAILED as exc:
        return [
            _error(
                "django_charon_sessions.E103",
                f"Cannot load the function library {fn.LIBRARY}: {exc}",
                "Grant the Redis user FUNCTION LOAD, or load the library ahead of time "
                "and set LOAD_FUNCTIONS to False (see the operations docs).",
            )
        ]
    return _probe_calls()


def _unreachable(exc: Exception, hint: str) -> Error:
    return _error("django_charon_sessions.E101", f"Cannot reach {describe_target()}: {exc}", hint)


def _probe_calls() -> list[CheckMessage]:
    """Save and delete a throwaway session: the rights every request needs."""
    # Shaped like a signed-in session, so every function a request or the
    # admin calls runs once: save, load, exists (FCALL_RO), list (FCALL_RO),
    # delete. The user id cannot be a real one.
    user = "django_charon_sessions deploy check"
    probe = SessionStore()
    try:
        probe[SESSION_KEY] = user
        probe.save()
        key = probe.session_key
        SessionStore(key).load()
        probe.exists(key)
        list_sessions(user)
        probe.delete()
    except RedisUnavailable as exc:
        return [_unreachable(exc, "Start Redis.")]
    except SessionStoreError as exc:
        return [
            _error(
                "django_charon_sessions.E105",
                f"The Redis user cannot run the session functions: {exc}",
                "Grant FCALL and FCALL_RO, and the commands the functions run "
                f"({', '.join(fn.FUNCTION_COMMANDS)}), on keys "
                f"'{acl_key_pattern(key_prefix())}'.",
            )
        ]
    return []


def _check_versions(info: Any) -> list[CheckMessage]:
    """Return an error for each server in an ``INFO server`` reply older than Redis 7.0.

    ``info`` is what redis-py returns: one dict, or one per node from a
    Cluster client. Valkey reports a Redis version too (7.2.4 from 7.2 on).
    """
    errors: list[CheckMessage] = []
    for version in _server_versions(info):
        if _version_tuple(version) < MIN_REDIS_VERSION:
            errors.append(
                _error(
                    "django_charon_sessions.E102",
                    f"{describe_target()} runs Redis {version}; Redis 7.0 or newer is needed.",
                    "Redis functions (FUNCTION LOAD, FCALL) arrived in Redis 7.0.",
                )
            )
    return errors


def _server_versions(info: Any) -> list[str]:
    if isinstance(info, dict) and "redis_version" not in info:
        # A Cluster client answers with one dict per node.
        return [str(node["redis_version"]) for node in info.values()]
    return [str(info["redis_version"])]


def _libraries(client: Any) -> set[str]:
    """Return the libraries loaded on every server (all primaries of a Cluster)."""
    per_node = list(fn.libraries_per_node(client).values())
    return set.intersection(*per_node) if per_node else set()


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)
