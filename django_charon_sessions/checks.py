"""System checks for ``CHARON_SESSIONS``.

The settings checks read settings only. The deploy checks (``manage.py check
--deploy``) talk to Redis: they confirm it is reachable, runs Redis 7.0 or
newer (or Valkey 7.2 or newer, which reports itself as Redis 7.2) and holds
or accepts the function library.

The deploy checks carry a tag of their own (:data:`REDIS_TAG`), not Django's
``database`` tag: Django runs ``database``-tagged checks only when
``--database`` is given, so ``check --deploy`` alone would skip them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning
from django.core.checks import register as register_check
from django.utils.module_loading import import_string
from redis.exceptions import NoPermissionError, RedisError

from .conf import DEFAULTS, charon_settings

if TYPE_CHECKING:
    from collections.abc import Sequence

ENGINE = "django_charon_sessions.engine"
URL_SCHEMES = ("redis", "rediss", "unix")
_FORBIDDEN_PREFIX_CHARS = set("{}*?[]\\ \t\r\n")
#: The tag of the checks that talk to Redis: ``manage.py check --deploy`` runs
#: them with the others, ``check --deploy --tag charon_redis`` alone.
REDIS_TAG = "charon_redis"


def register() -> None:
    """Register the checks (called from ``AppConfig.ready()``)."""
    _register(check_settings, Tags.compatibility)
    _register(check_admin, Tags.admin)
    _register(check_redis, REDIS_TAG, deploy=True)


def _register(func: Any, tag: str, deploy: bool = False) -> None:
    register_check(func, tag, deploy=deploy)


def _error(msg: str, hint: str, n: int) -> Error:
    return Error(msg, hint=hint, id=f"django_charon_sessions.E{n:03d}")


def _warning(msg: str, hint: str, n: int) -> Warning:
    return Warning(msg, hint=hint, id=f"django_charon_sessions.W{n:03d}")


def check_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Check ``CHARON_SESSIONS`` and the session settings it depends on."""
    raw = getattr(settings, "CHARON_SESSIONS", {})
    if not isinstance(raw, dict):
        return [
            _error(
                "CHARON_SESSIONS must be a dict.",
                'For example CHARON_SESSIONS = {"URL": "redis://127.0.0.1:6379/0"}.',
                1,
            )
        ]
    errors: list[CheckMessage] = []
    for check in (
        _check_keys,
        _check_source,
        _check_url,
        _check_cache_alias,
        _check_prefix,
        _check_tag_secret,
        _check_numbers,
        _check_flags,
        _check_factory,
        _check_metadata,
    ):
        errors += check(raw)
    errors += _check_serializer()
    errors += _check_engine()
    errors += _check_middleware()
    return errors


def _check_keys(raw: dict[str, Any]) -> list[CheckMessage]:
    unknown = sorted(set(raw) - set(DEFAULTS))
    if not unknown:
        return []
    return [
        _warning(
            f"CHARON_SESSIONS has unknown keys: {', '.join(map(repr, unknown))}.",
            f"The known keys are {', '.join(sorted(DEFAULTS))}; check the spelling.",
            1,
        )
    ]


def _check_source(raw: dict[str, Any]) -> list[CheckMessage]:
    given = [k for k in ("URL", "CACHE_ALIAS", "CONNECTION_FACTORY") if raw.get(k)]
    if len(given) <= 1:
        return []
    return [
        _error(
            f"CHARON_SESSIONS sets {' and '.join(given)}; only one may say where Redis is.",
            "Keep URL for a connection of the app's own, CACHE_ALIAS to share a cache's "
            "connection, or CONNECTION_FACTORY for a client you build yourself.",
            2,
        )
    ]


def _check_url(raw: dict[str, Any]) -> list[CheckMessage]:
    url = raw.get("URL")
    if url is None:
        return []
    scheme = urlsplit(url).scheme if isinstance(url, str) else None
    errors: list[CheckMessage] = []
    if scheme not in URL_SCHEMES:
        errors.append(
            _error(
                "CHARON_SESSIONS['URL'] must be a redis://, rediss:// or unix:// URL.",
                'For example "redis://127.0.0.1:6379/0" or "unix:///run/redis.sock?db=0".',
                3,
            )
        )
    elif scheme == "unix" and raw.get("CLUSTER"):
        errors.append(
            _error(
                "CHARON_SESSIONS['CLUSTER'] cannot be used with a unix:// URL.",
                "Give the redis:// URL of any node of the Cluster.",
                11,
            )
        )
    return errors


def _check_cache_alias(raw: dict[str, Any]) -> list[CheckMessage]:
    alias = raw.get("CACHE_ALIAS")
    if not alias:
        return []
    caches = getattr(settings, "CACHES", {})
    if alias not in caches:
        return [
            _error(
                f"CHARON_SESSIONS['CACHE_ALIAS'] is {alias!r}, which is not in CACHES.",
                f"Use one of: {', '.join(map(repr, caches)) or 'no caches are defined'}.",
                4,
            )
        ]
    cache = caches[alias]
    backend = str(cache.get("BACKEND", ""))
    if backend.startswith("django_redis."):
        timeout_set = "SOCKET_TIMEOUT" in cache.get("OPTIONS", {})
    elif backend == "django.core.cache.backends.redis.RedisCache":
        timeout_set = "socket_timeout" in cache.get("OPTIONS", {})
    else:
        return [
            _error(
                f"Cache {alias!r} ({backend}) is not a Redis cache.",
                "CACHE_ALIAS needs a django-redis cache or Django's RedisCache; otherwise set URL.",
                5,
            )
        ]
    errors: list[CheckMessage] = []
    if raw.get("CLUSTER"):
        errors.append(
            _error(
                "CHARON_SESSIONS['CLUSTER'] cannot be used with CACHE_ALIAS.",
                "Cache backends connect to a single server; give the Cluster's URL instead.",
                11,
            )
        )
    if not timeout_set:
        errors.append(
            _warning(
                f"Cache {alias!r} has no socket timeout, so a stalled Redis would hang "
                "requests that use the session.",
                "Set OPTIONS SOCKET_TIMEOUT (django-redis) or socket_timeout (RedisCache).",
                2,
            )
        )
    return errors


def _check_prefix(raw: dict[str, Any]) -> list[CheckMessage]:
    prefix = raw.get("KEY_PREFIX", DEFAULTS["KEY_PREFIX"])
    if isinstance(prefix, str) and prefix and not set(prefix) & _FORBIDDEN_PREFIX_CHARS:
        return []
    return [
        _error(
            "CHARON_SESSIONS['KEY_PREFIX'] must be a non-empty string without braces, "
            "whitespace or the glob characters * ? [ ] \\.",
            "Braces would change the Redis Cluster hash slot of every key; "
            'use something like "charon" or "mysite:sessions".',
            6,
        )
    ]


def _check_tag_secret(raw: dict[str, Any]) -> list[CheckMessage]:
    value = raw.get("TAG_SECRET")
    if value is not None and not (isinstance(value, str) and value):
        return [
            _error(
                "CHARON_SESSIONS['TAG_SECRET'] must be None or a non-empty string.",
                "Set it once to the current SECRET_KEY (or any long random string) "
                "and never change it.",
                21,
            )
        ]
    if value is None and getattr(settings, "SECRET_KEY_FALLBACKS", None):
        return [
            _warning(
                "SECRET_KEY is being rotated but CHARON_SESSIONS['TAG_SECRET'] is not set: "
                "user tags follow SECRET_KEY, so sessions created under the old key drop "
                "out of their user's list and of 'log out everywhere' once its fallback "
                "is removed.",
                "Set TAG_SECRET to the value that was SECRET_KEY before the rotation (the "
                "first entry of SECRET_KEY_FALLBACKS): tags stay as they are, now and "
                "after every later rotation.",
                7,
            )
        ]
    return []


def _is_positive_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# Whole-number settings: (key, smallest allowed value, None allowed, hint, id).
_INTEGERS = (
    ("ABSOLUTE_MAX_AGE", 1, True, "For example 30 * 24 * 3600 ends every session 30 days "
     "after it began.", 9),
    ("LAST_SEEN_INTERVAL", 0, False, '0 turns "last seen" updates off; the default is 60.', 10),
    ("MAX_CONNECTIONS", 1, True, "None lets redis-py open connections as needed.", 13),
    ("MAX_SESSIONS_PER_USER", 1, True, "None allows any number of sessions per user.", 15),
    ("USER_AGENT_MAX_LENGTH", 1, False, "The default, 256, keeps common browsers' headers "
     "whole.", 16),
    ("PROXY_COUNT", 1, True, "The number of proxies in front of Django, or None.", 18),
    ("REAUTHENTICATE_AFTER", 0, True, "Seconds after sign-in; 0 always asks for the "
     "password, None never does. The default is 3600.", 20),
)  # fmt: skip


def _check_numbers(raw: dict[str, Any]) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for name in ("SOCKET_CONNECT_TIMEOUT", "SOCKET_TIMEOUT"):
        if name in raw and not _is_positive_number(raw[name]):
            errors.append(
                _error(
                    f"CHARON_SESSIONS[{name!r}] must be a positive number of seconds.",
                    "Without a bound, a stalled Redis would hang every request; "
                    f"the default is {DEFAULTS[name]}.",
                    7,
                )
            )
    for name, smallest, none_ok, hint, n in _INTEGERS:
        value = raw.get(name, DEFAULTS[name])
        if (value is None and none_ok) or (_is_int(value) and value >= smallest):
            continue
        wanted = "0 or more" if smallest == 0 else "a positive integer"
        errors.append(
            _error(
                f"CHARON_SESSIONS[{name!r}] must be {'None or ' if none_ok else ''}{wanted}.",
                hint,
                n,
            )
        )
    return errors


def _check_flags(raw: dict[str, Any]) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for name in (
        "CLUSTER",
        "LOAD_FUNCTIONS",
        "CAPTURE_IP",
        "CAPTURE_USER_AGENT",
        "END_OTHER_SESSIONS_ON_PASSWORD_CHANGE",
        "END_SESSIONS_ON_DEACTIVATE",
        "END_SESSIONS_ON_DELETE",
        "ADMIN",
    ):
        if name in raw and not isinstance(raw[name], bool):
            errors.append(
                _error(
                    f"CHARON_SESSIONS[{name!r}] must be True or False.",
                    f"The default is {DEFAULTS[name]}.",
                    14,
                )
            )
    return errors


def _check_factory(raw: dict[str, Any]) -> list[CheckMessage]:
    path = raw.get("CONNECTION_FACTORY")
    if not path:
        return []
    try:
        factory = import_string(path) if isinstance(path, str) else None
    except ImportError:
        factory = None
    if callable(factory):
        return []
    return [
        _error(
            f"CHARON_SESSIONS['CONNECTION_FACTORY'] is {path!r}, which is not an importable "
            "callable.",
            "Give the dotted path of a function taking is_async (bool) and returning a "
            "redis.Redis, redis.asyncio.Redis or Cluster client.",
            12,
        )
    ]


def _installed(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _check_metadata(raw: dict[str, Any]) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    proxies = raw.get("TRUSTED_PROXIES", [])
    if not isinstance(proxies, (list, tuple)) or not all(isinstance(p, str) for p in proxies):
        errors.append(
            _error(
                "CHARON_SESSIONS['TRUSTED_PROXIES'] must be a list of IP addresses (strings).",
                'For example ["10.0.0.1", "10.0.0.2"]: the proxies in front of Django.',
                17,
            )
        )
    count = raw.get("PROXY_COUNT")
    if (proxies or count is not None) and not _installed("python_ipware"):
        errors.append(
            _error(
                "TRUSTED_PROXIES or PROXY_COUNT is set but python-ipware is not installed.",
                "pip install 'django-charon-sessions[metadata]'.",
                19,
            )
        )
    return errors


def _check_middleware() -> list[CheckMessage]:
    if getattr(settings, "SESSION_ENGINE", "") != ENGINE:
        return []
    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    ours = "django_charon_sessions.middleware.SessionMetadataMiddleware"
    django_session = "django.contrib.sessions.middleware.SessionMiddleware"
    if ours in middleware and (
        django_session not in middleware
        or middleware.index(ours) > middleware.index(django_session)
    ):
        if _installed("ua_parser") or not charon_settings.CAPTURE_USER_AGENT:
            return []
        return [
            _warning(
                "ua-parser is not installed, so sessions show browser and OS as Unknown.",
                "pip install 'django-charon-sessions[metadata]'.",
                5,
            )
        ]
    return [
        _warning(
            f"{ours} is not in MIDDLEWARE after Django's SessionMiddleware.",
            "Without it sessions carry no IP or browser. Add it right after SessionMiddleware.",
            4,
        )
    ]


def _check_serializer() -> list[CheckMessage]:
    path = str(getattr(settings, "SESSION_SERIALIZER", ""))
    if "pickle" not in path.lower():
        return []
    return [
        _error(
            f"SESSION_SERIALIZER is {path!r}; this engine refuses pickle.",
            "Unpickling session data lets whoever can write to Redis run code. Use "
            '"django.contrib.sessions.serializers.JSONSerializer" (the default).',
            8,
        )
    ]


def _check_engine() -> list[CheckMessage]:
    engine = getattr(settings, "SESSION_ENGINE", "")
    if engine == ENGINE:
        return []
    return [
        _warning(
            f"django_charon_sessions is installed but SESSION_ENGINE is {engine!r}.",
            f'Set SESSION_ENGINE = "{ENGINE}" to store sessions with it.',
            3,
        )
    ]


def check_admin(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Check that the user admin has the sessions pages when ``ADMIN`` asks for them."""
    from django.apps import apps

    raw = getattr(settings, "CHARON_SESSIONS", {})
    if not isinstance(raw, dict) or not charon_settings.ADMIN:
        return []
    if not apps.is_installed("django.contrib.admin"):
        return []
    from django.contrib import admin
    from django.contrib.auth import get_user_model

    from .admin import SessionsAdminMixin

    registered = admin.site._registry.get(get_user_model())
    if registered is None or isinstance(registered, SessionsAdminMixin):
        return []
    return [
        _warning(
            f"The admin of {settings.AUTH_USER_MODEL} has no sessions pages.",
            "The user admin was registered after django_charon_sessions adopted it: list "
            "the app after django.contrib.admin in INSTALLED_APPS, and register the user "
            "admin in an admin.py module (not in urls.py or another ready(), nor with "
            "SimpleAdminConfig), or put SessionsAdminMixin first in its bases.",
            6,
        )
    ]


def check_redis(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Deploy check: Redis is reachable, recent enough, and has the library."""
    if check_settings():
        return []  # the settings errors say what to fix first
    from . import calls
    from . import library as fn
    from .client import describe_target, get_client
    from .exceptions import SessionStoreError

    try:
        client = get_client()
        try:
            errors = _check_versions(client.info("server"))
        except NoPermissionError:
            errors = []  # INFO is not granted: Redis answered, the version is unknown
    except (SessionStoreError, RedisError) as exc:
        return [
            _error(
                f"Cannot reach {describe_target()}: {exc}",
                "Start Redis or correct CHARON_SESSIONS.",
                101,
            )
        ]
    if errors:
        return errors
    try:
        try:
            libraries = _libraries(client)
        except NoPermissionError:
            libraries = {fn.LIBRARY}  # FUNCTION LIST not granted: the probe below tells
        if fn.LIBRARY not in libraries:
            if not charon_settings.LOAD_FUNCTIONS:
                return [_missing_library()]
            calls.load_library(client)
    except (SessionStoreError, RedisError) as exc:
        return [
            _error(
                f"Cannot load the function library {fn.LIBRARY}: {exc}",
                "Grant the Redis user FUNCTION LOAD, or load the library ahead of time "
                "and set LOAD_FUNCTIONS to False (see the operations docs).",
                103,
            )
        ]
    return _probe_calls()


def _probe_calls() -> list[CheckMessage]:
    """Save and delete a throwaway session: the rights every request needs."""
    from . import library as fn
    from .api import list_sessions
    from .client import describe_target
    from .engine import SessionStore
    from .exceptions import RedisUnavailable, SessionStoreError
    from .keyspace import acl_key_pattern, key_prefix

    # Shaped like a signed-in session, so every function a request or the
    # admin calls runs once: save, load, exists (FCALL_RO), list (FCALL_RO),
    # delete. The user id cannot be a real one.
    user = "django_charon_sessions deploy check"
    probe = SessionStore()
    try:
        probe["_auth_user_id"] = user
        probe.save()
        key = probe.session_key
        SessionStore(key).load()
        probe.exists(key)
        list_sessions(user)
        probe.delete()
    except RedisUnavailable as exc:
        return [_error(f"Cannot reach {describe_target()}: {exc}", "Start Redis.", 101)]
    except SessionStoreError as exc:
        return [
            _error(
                f"The Redis user cannot run the session functions: {exc}",
                "Grant FCALL and FCALL_RO, and the commands the functions run "
                f"({', '.join(fn.FUNCTION_COMMANDS)}), on keys "
                f"'{acl_key_pattern(key_prefix())}'.",
                105,
            )
        ]
    return []


def _missing_library() -> Error:
    from . import library as fn

    return _error(
        f"The function library {fn.LIBRARY} is not loaded and LOAD_FUNCTIONS is False.",
        "Load it ahead of time as described in the operations docs.",
        104,
    )


#: The oldest server version the engine runs on: functions arrived in Redis 7.0.
MIN_REDIS_VERSION = (7, 0)


def _check_versions(info: Any) -> list[CheckMessage]:
    """Return an error for each server in an ``INFO server`` reply older than Redis 7.0.

    ``info`` is what redis-py returns: one dict, or one per node from a
    Cluster client. Valkey reports a Redis version too (7.2.4 from 7.2 on).
    """
    from .client import describe_target

    errors: list[CheckMessage] = []
    for version in _server_versions(info):
        if _version_tuple(version) < MIN_REDIS_VERSION:
            errors.append(
                _error(
                    f"{describe_target()} runs Redis {version}; Redis 7.0 or newer is needed.",
                    "Redis functions (FUNCTION LOAD, FCALL) arrived in Redis 7.0.",
                    102,
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
    from . import library as fn

    per_node = list(fn.libraries_per_node(client).values())
    return set.intersection(*per_node) if per_node else set()


def _version_tuple(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)
