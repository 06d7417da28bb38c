"""System checks of ``CHARON_SESSIONS``, the session settings and the user admin.

These read settings and the admin registry only, and run with every
``manage.py`` command. A bad value of one key is found by its row of the
settings table (:data:`.conf.SETTINGS`); the functions here check what
involves more than one setting, or the installed packages. The checks that
talk to Redis are in :mod:`.deploy`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal, get_args
from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning
from django.core.checks import register as register_check
from django.utils.module_loading import import_string

from .conf import ENGINE, NOT_A_DICT, SETTINGS, CharonSettings, Problem

if TYPE_CHECKING:
    from collections.abc import Sequence

#: The ids the functions of this module report (the settings table has its own).
CheckId = Literal[
    "django_charon_sessions.W001",
    "django_charon_sessions.E002",
    "django_charon_sessions.E004",
    "django_charon_sessions.E005",
    "django_charon_sessions.W002",
    "django_charon_sessions.W003",
    "django_charon_sessions.W004",
    "django_charon_sessions.W005",
    "django_charon_sessions.W006",
    "django_charon_sessions.W007",
    "django_charon_sessions.W008",
    "django_charon_sessions.E008",
    "django_charon_sessions.E011",
    "django_charon_sessions.E012",
    "django_charon_sessions.E019",
    "django_charon_sessions.E022",
]

#: Every id the settings and admin checks can report.
CHECK_IDS: tuple[str, ...] = tuple(
    sorted({NOT_A_DICT.check, *(s.check for s in SETTINGS), *get_args(CheckId)})
)


def register() -> None:
    """Register the checks (called from ``AppConfig.ready()``)."""
    register_check(check_settings, Tags.compatibility)
    register_check(check_admin, Tags.admin)


def _report(check: CheckId, msg: str, hint: str) -> CheckMessage:
    level = Error if ".E" in check else Warning
    return level(msg, hint=hint, id=check)


def _error_of(problem: Problem) -> CheckMessage:
    return Error(problem.message, hint=problem.hint, id=problem.check)


def check_settings(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Check ``CHARON_SESSIONS`` and the session settings it depends on."""
    raw = getattr(settings, "CHARON_SESSIONS", {})
    if not isinstance(raw, dict):
        return [_error_of(NOT_A_DICT)]
    errors = [_error_of(s.problem) for s in SETTINGS if not s.valid(s.given(raw))]
    for check in (
        _check_keys,
        _check_source,
        _check_cluster,
        _check_cache_alias,
        _check_rotation,
        _check_factory,
        _check_ipware,
        _check_middleware,
        _check_geoip,
    ):
        errors += check(raw)
    errors += _check_serializer()
    errors += _check_engine()
    return errors


def _check_keys(raw: dict[str, Any]) -> list[CheckMessage]:
    known = [s.name for s in SETTINGS]
    unknown = sorted(set(raw) - set(known))
    if not unknown:
        return []
    return [
        _report(
            "django_charon_sessions.W001",
            f"CHARON_SESSIONS has unknown keys: {', '.join(map(repr, unknown))}.",
            f"The known keys are {', '.join(sorted(known))}; check the spelling.",
        )
    ]


def _check_source(raw: dict[str, Any]) -> list[CheckMessage]:
    given = [k for k in ("URL", "CACHE_ALIAS", "CONNECTION_FACTORY") if raw.get(k)]
    if len(given) <= 1:
        return []
    return [
        _report(
            "django_charon_sessions.E002",
            f"CHARON_SESSIONS sets {' and '.join(given)}; only one may say where Redis is.",
            "Keep URL for a connection of the app's own, CACHE_ALIAS to share a cache's "
            "connection, or CONNECTION_FACTORY for a client you build yourself.",
        )
    ]


def _check_cluster(raw: dict[str, Any]) -> list[CheckMessage]:
    url = raw.get("URL")
    if not raw.get("CLUSTER") or not isinstance(url, str) or urlsplit(url).scheme != "unix":
        return []
    return [
        _report(
            "django_charon_sessions.E011",
            "CHARON_SESSIONS['CLUSTER'] cannot be used with a unix:// URL.",
            "Give the redis:// URL of any node of the Cluster.",
        )
    ]


def _check_cache_alias(raw: dict[str, Any]) -> list[CheckMessage]:
    alias = raw.get("CACHE_ALIAS")
    if not alias or not isinstance(alias, str):
        return []  # not set, or reported by the settings table
    caches = getattr(settings, "CACHES", {})
    if alias not in caches:
        return [
            _report(
                "django_charon_sessions.E004",
                f"CHARON_SESSIONS['CACHE_ALIAS'] is {alias!r}, which is not in CACHES.",
                f"Use one of: {', '.join(map(repr, caches)) or 'no caches are defined'}.",
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
            _report(
                "django_charon_sessions.E005",
                f"Cache {alias!r} ({backend}) is not a Redis cache.",
                "CACHE_ALIAS needs a django-redis cache or Django's RedisCache; otherwise set URL.",
            )
        ]
    errors: list[CheckMessage] = []
    if raw.get("CLUSTER"):
        errors.append(
            _report(
                "django_charon_sessions.E022",
                "CHARON_SESSIONS['CLUSTER'] cannot be used with CACHE_ALIAS.",
                "Cache backends connect to a single server; give the Cluster's URL instead.",
            )
        )
    if not timeout_set:
        errors.append(
            _report(
                "django_charon_sessions.W002",
                f"Cache {alias!r} has no socket timeout, so a stalled Redis would hang "
                "requests that use the session.",
                "Set OPTIONS SOCKET_TIMEOUT (django-redis) or socket_timeout (RedisCache).",
            )
        )
    return errors


def _check_rotation(raw: dict[str, Any]) -> list[CheckMessage]:
    if CharonSettings.TAG_SECRET.given(raw) is not None:
        return []
    if not getattr(settings, "SECRET_KEY_FALLBACKS", None):
        return []
    return [
        _report(
            "django_charon_sessions.W007",
            "SECRET_KEY is being rotated but CHARON_SESSIONS['TAG_SECRET'] is not set: "
            "user tags follow SECRET_KEY, so sessions created under the old key drop "
            "out of their user's list and of 'log out everywhere' once its fallback "
            "is removed.",
            "Set TAG_SECRET to the value that was SECRET_KEY before the rotation (the "
            "first entry of SECRET_KEY_FALLBACKS): tags stay as they are, now and "
            "after every later rotation.",
        )
    ]


def _check_factory(raw: dict[str, Any]) -> list[CheckMessage]:
    path = raw.get("CONNECTION_FACTORY")
    if not path or not isinstance(path, str):
        return []  # not set, or reported by the settings table
    try:
        factory = import_string(path)
    except ImportError:
        factory = None
    if callable(factory):
        return []
    return [
        _report(
            "django_charon_sessions.E012",
            f"CHARON_SESSIONS['CONNECTION_FACTORY'] is {path!r}, which is not an importable "
            "callable.",
            CharonSettings.CONNECTION_FACTORY.hint,
        )
    ]


def _installed(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _check_ipware(raw: dict[str, Any]) -> list[CheckMessage]:
    proxies = CharonSettings.TRUSTED_PROXIES.given(raw)
    if (not proxies and raw.get("PROXY_COUNT") is None) or _installed("python_ipware"):
        return []
    return [
        _report(
            "django_charon_sessions.E019",
            "TRUSTED_PROXIES or PROXY_COUNT is set but python-ipware is not installed.",
            "pip install 'django-charon-sessions[metadata]'.",
        )
    ]


def _check_geoip(raw: dict[str, Any]) -> list[CheckMessage]:
    from . import locations

    path = locations.configured_path()
    if (
        path is None
        or not CharonSettings.CAPTURE_LOCATION.read_or_default(raw)
        or not CharonSettings.CAPTURE_IP.read_or_default(raw)
        or locations.database_path() is not None
    ):
        return []
    return [
        _report(
            "django_charon_sessions.W008",
            f"GEOIP_PATH is {str(path)!r}, which is neither a database file nor a directory "
            f"holding {locations.CITY_FILE} or {locations.COUNTRY_FILE}; sessions get no "
            "location.",
            "Put a MaxMind-format database there, correct GEOIP_PATH, or set "
            "CHARON_SESSIONS['CAPTURE_LOCATION'] to False.",
        )
    ]


def _check_middleware(raw: dict[str, Any]) -> list[CheckMessage]:
    if getattr(settings, "SESSION_ENGINE", "") != ENGINE:
        return []
    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    ours = "django_charon_sessions.middleware.SessionMetadataMiddleware"
    django_session = "django.contrib.sessions.middleware.SessionMiddleware"
    if ours in middleware and (
        django_session not in middleware
        or middleware.index(ours) > middleware.index(django_session)
    ):
        if _installed("ua_parser") or not CharonSettings.CAPTURE_USER_AGENT.read_or_default(raw):
            return []
        return [
            _report(
                "django_charon_sessions.W005",
                "ua-parser is not installed, so sessions show browser and OS as Unknown.",
                "pip install 'django-charon-sessions[metadata]'.",
            )
        ]
    return [
        _report(
            "django_charon_sessions.W004",
            f"{ours} is not in MIDDLEWARE after Django's SessionMiddleware.",
            "Without it sessions carry no IP or browser. Add it right after SessionMiddleware.",
        )
    ]


def _check_serializer() -> list[CheckMessage]:
    path = str(getattr(settings, "SESSION_SERIALIZER", ""))
    if "pickle" not in path.lower():
        return []
    return [
        _report(
            "django_charon_sessions.E008",
            f"SESSION_SERIALIZER is {path!r}; this engine refuses pickle.",
            "Unpickling session data lets whoever can write to Redis run code. Use "
            '"django.contrib.sessions.serializers.JSONSerializer" (the default).',
        )
    ]


def _check_engine() -> list[CheckMessage]:
    engine = getattr(settings, "SESSION_ENGINE", "")
    if engine == ENGINE:
        return []
    return [
        _report(
            "django_charon_sessions.W003",
            f"django_charon_sessions is installed but SESSION_ENGINE is {engine!r}.",
            f'Set SESSION_ENGINE = "{ENGINE}" to store sessions with it.',
        )
    ]


def admin_wanted() -> bool:
    """Return whether ``ADMIN`` asks for the sessions pages, without raising.

    A bad ``CHARON_SESSIONS`` or ``ADMIN`` is for the settings checks to report
    (E001, E014), so startup reads it leniently.
    """
    raw = getattr(settings, "CHARON_SESSIONS", {})
    return isinstance(raw, dict) and CharonSettings.ADMIN.read_or_default(raw)


def check_admin(app_configs: Sequence[Any] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """Check that the user admin has the sessions pages when ``ADMIN`` asks for them."""
    from django.apps import apps

    if not admin_wanted() or not apps.is_installed("django.contrib.admin"):
        return []
    # Imported here: django.contrib.admin's models cannot load when it is not installed.
    from django.contrib import admin
    from django.contrib.auth import get_user_model

    from .admin import SessionsAdminMixin

    registered = admin.site._registry.get(get_user_model())
    if registered is None or isinstance(registered, SessionsAdminMixin):
        return []
    found = f"{type(registered).__module__}.{type(registered).__qualname__}"
    return [
        _report(
            "django_charon_sessions.W006",
            f"The admin of {settings.AUTH_USER_MODEL} ({found}) has no sessions pages.",
            "It was registered after django_charon_sessions adopted the user admin. Put "
            "SessionsAdminMixin first in the bases of your user admin; or list the app in "
            "INSTALLED_APPS after django.contrib.admin and after the app that registers "
            "that admin, from its admin.py or ready() (not from urls.py, nor with "
            "SimpleAdminConfig).",
        )
    ]
