"""The ``CHARON_SESSIONS`` setting: one table, read lazily through one typed object.

Each key of ``CHARON_SESSIONS`` is one :class:`Setting` in the body of
:class:`CharonSettings`: its default, the values it accepts, how a value is
converted, the id of the system check that reports a bad value, and one line
saying what it does. The settings checks (:mod:`.checks`) and the table in
docs/settings.md (compared by tests/test_docs.py) come from these rows.

Every attribute reads Django's settings at access time, so
``override_settings`` works everywhere. A value the checks would reject raises
:exc:`~django.core.exceptions.ImproperlyConfigured` naming the setting and the
check, for code that runs where the checks did not (a WSGI server).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

#: The ``SESSION_ENGINE`` that selects this package's session store.
ENGINE = "django_charon_sessions.engine"

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")

#: Used when neither ``URL`` nor ``CACHE_ALIAS`` nor ``CONNECTION_FACTORY`` is set.
DEFAULT_URL = "redis://127.0.0.1:6379/0"
URL_SCHEMES = ("redis", "rediss", "unix")
_FORBIDDEN_PREFIX_CHARS = frozenset("{}*?[]\\ \t\r\n")


@dataclass(frozen=True)
class Problem:
    """A bad configuration: the system check's id, its message and its hint."""

    check: str
    message: str
    hint: str

    def exception(self) -> ImproperlyConfigured:
        """Return the error raised when the value is read where no check ran."""
        return ImproperlyConfigured(f"{self.message} {self.hint} (system check {self.check})")


#: ``CHARON_SESSIONS`` itself is not a dict.
NOT_A_DICT = Problem(
    "django_charon_sessions.E001",
    "CHARON_SESSIONS must be a dict.",
    'For example CHARON_SESSIONS = {"URL": "redis://127.0.0.1:6379/0"}.',
)


def raw_settings() -> dict[str, Any]:
    """Return ``settings.CHARON_SESSIONS`` as given ({} when it is not set)."""
    value = getattr(settings, "CHARON_SESSIONS", {})
    if not isinstance(value, dict):
        raise NOT_A_DICT.exception()
    return value


@dataclass
class Setting(Generic[T]):
    """One key of ``CHARON_SESSIONS``; read on a :class:`CharonSettings`, its value."""

    default: Any
    #: One line of Markdown for the table in docs/settings.md.
    doc: str
    #: The id of the system check that reports a bad value.
    check: str
    #: The values accepted, completing "must be ...".
    rule: str
    valid: Callable[[Any], bool]
    convert: Callable[[Any], T]
    hint: str
    name: str = field(init=False, default="")

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Setting[T]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> T: ...
    def __get__(self, obj: object | None, owner: type | None = None) -> Setting[T] | T:
        if obj is None:
            return self
        return self.read(raw_settings())

    def given(self, raw: dict[str, Any]) -> Any:
        """Return the value ``raw`` gives this setting, or its default."""
        return raw.get(self.name, self.default)

    def read_or_default(self, raw: dict[str, Any]) -> T:
        """Return the converted value from ``raw``, or the default's if the value is bad.

        For checks that depend on this setting: its own check reports a bad value.
        """
        value = self.given(raw)
        return self.convert(value if self.valid(value) else self.default)

    def read(self, raw: dict[str, Any]) -> T:
        """Return the converted value from ``raw``; raise ImproperlyConfigured if it is bad."""
        value = self.given(raw)
        if not self.valid(value):
            raise self.problem.exception()
        return self.convert(value)

    @property
    def problem(self) -> Problem:
        """Return what the system check says about a bad value."""
        return Problem(
            self.check, f"CHARON_SESSIONS[{self.name!r}] must be {self.rule}.", self.hint
        )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _flag(default: bool, doc: str) -> Setting[bool]:
    return Setting(
        default,
        doc,
        check="django_charon_sessions.E014",
        rule="True or False",
        valid=lambda v: isinstance(v, bool),
        convert=bool,
        hint=f"The default is {default}.",
    )


def _seconds(default: float, doc: str) -> Setting[float]:
    return Setting(
        default,
        doc,
        check="django_charon_sessions.E007",
        rule="a positive number of seconds",
        valid=lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0,
        convert=float,
        hint="Without a bound, a stalled Redis would hang every request; "
        f"the default is {default}.",
    )


def _int_or_zero(v: Any) -> int:
    return int(v or 0)


def _int_or_none(v: Any) -> int | None:
    return None if v is None else int(v)


def _whole(
    default: int | None,
    doc: str,
    *,
    smallest: int,
    none_ok: bool = True,
    check: str,
    hint: str,
    convert: Callable[[Any], T],
) -> Setting[T]:
    """Return a whole-number setting of at least ``smallest`` (or None if ``none_ok``)."""
    wanted = "0 or more" if smallest == 0 else "a positive integer"

    def valid(v: Any) -> bool:
        return (v is None and none_ok) or (_is_int(v) and v >= smallest)

    rule = f"None or {wanted}" if none_ok else wanted
    return Setting(default, doc, check, rule, valid, convert, hint)


def _optional_text(v: Any) -> str | None:
    return str(v) if v else None


def _reference(doc: str, *, check: str, rule: str, hint: str) -> Setting[str | None]:
    """Return a setting that names something else (a cache, a function); unset by default."""
    return Setting(
        None, doc, check, rule, lambda v: not v or isinstance(v, str), _optional_text, hint
    )


def _key_prefix(value: Any) -> str:
    worker = parallel_test_worker()
    return f"{value}:{worker}" if worker else str(value)


class CharonSettings:
    """Typed, lazy view of ``settings.CHARON_SESSIONS``: the table of every key."""

    URL = Setting(
        DEFAULT_URL,
        "`redis://`, `rediss://` (TLS) or `unix://` URL. Used when neither `CACHE_ALIAS` "
        "nor `CONNECTION_FACTORY` is set.",
        check="django_charon_sessions.E003",
        rule="a redis://, rediss:// or unix:// URL",
        valid=lambda v: v is None or (isinstance(v, str) and urlsplit(v).scheme in URL_SCHEMES),
        convert=lambda v: str(v) if v else DEFAULT_URL,
        hint='For example "redis://127.0.0.1:6379/0" or "unix:///run/redis.sock?db=0".',
    )
    CACHE_ALIAS = _reference(
        "Name of a cache in `CACHES` whose Redis connection to share: django-redis "
        "(`django_redis.cache.RedisCache`) or Django's "
        "`django.core.cache.backends.redis.RedisCache`. Sessions still use their own keys "
        "(`KEY_PREFIX`).",
        check="django_charon_sessions.E004",
        rule="None or the name of a cache in CACHES",
        hint="Give the alias of a django-redis cache or of Django's RedisCache.",
    )
    KEY_PREFIX = Setting(
        "charon",
        "Prefix of every key. Two sites sharing one Redis must use different prefixes; data "
        "of one is rejected by the other. In a parallel test worker `:<worker>` follows it "
        "([](testing.md)).",
        check="django_charon_sessions.E006",
        rule="a non-empty string without braces, whitespace or the glob characters * ? [ ] \\",
        valid=lambda v: isinstance(v, str) and bool(v) and not set(v) & _FORBIDDEN_PREFIX_CHARS,
        convert=_key_prefix,
        hint="Braces would change the Redis Cluster hash slot of every key; "
        'use something like "charon" or "mysite:sessions".',
    )
    TAG_SECRET = Setting(
        None,
        "The secret a user's slot tag (the first 15 characters of the cookie) is derived "
        "from. Set it once, for example to the current `SECRET_KEY`, and never change it: "
        "then rotating `SECRET_KEY` never moves sessions between slots. `None` derives tags "
        "from `SECRET_KEY` and its fallbacks (check `W007` during a rotation).",
        check="django_charon_sessions.E021",
        rule="None or a non-empty string",
        valid=lambda v: v is None or (isinstance(v, str) and bool(v)),
        convert=_optional_text,
        hint="Set it once to the current SECRET_KEY (or any long random string) "
        "and never change it.",
    )
    CLUSTER = _flag(False, "Use Redis Cluster; `URL` names any node.")
    CONNECTION_FACTORY = _reference(
        "Dotted path to `factory(is_async: bool)` returning a client (`redis.Redis`, "
        "`redis.asyncio.Redis`, or a Cluster client) made with `decode_responses=False`. "
        "For Sentinel, custom TLS, or fakeredis in tests.",
        check="django_charon_sessions.E012",
        rule="None or the dotted path of a callable",
        hint="Give the dotted path of a function taking is_async (bool) and returning a "
        "redis.Redis, redis.asyncio.Redis or Cluster client.",
    )
    SOCKET_CONNECT_TIMEOUT = _seconds(
        1.0, "Seconds; a connection attempt that takes longer fails with `RedisUnavailable`."
    )
    SOCKET_TIMEOUT = _seconds(
        1.0, "Seconds; a reply that takes longer fails with `RedisUnavailable`."
    )
    MAX_CONNECTIONS = _whole(
        None,
        "Upper bound of the connection pool.",
        smallest=1,
        check="django_charon_sessions.E013",
        hint="None lets redis-py open connections as needed.",
        convert=_int_or_none,
    )
    ABSOLUTE_MAX_AGE = _whole(
        None,
        "Seconds after a session's creation when it ends regardless of activity. A login "
        "creates a new session; `cycle_key()` of a signed-in session keeps its creation time.",
        smallest=1,
        convert=_int_or_zero,
        check="django_charon_sessions.E009",
        hint="For example 30 * 24 * 3600 ends every session 30 days after it began.",
    )
    LAST_SEEN_INTERVAL = _whole(
        60,
        'A load updates a signed-in session\'s "last seen" time when it is older than this '
        "many seconds; `0` never updates it.",
        smallest=0,
        none_ok=False,
        convert=_int_or_zero,
        check="django_charon_sessions.E010",
        hint='0 turns "last seen" updates off; the default is 60.',
    )
    MAX_SESSIONS_PER_USER = _whole(
        None,
        "Most live sessions per user; a new one ends the oldest.",
        smallest=1,
        convert=_int_or_zero,
        check="django_charon_sessions.E015",
        hint="None allows any number of sessions per user.",
    )
    CAPTURE_IP = _flag(
        True,
        "Store the client's IP with signed-in sessions (needs `SessionMetadataMiddleware`).",
    )
    CAPTURE_USER_AGENT = _flag(True, "Store the `User-Agent` header with signed-in sessions.")
    CAPTURE_LOCATION = _flag(
        True,
        "Store the city and country of the client's IP with signed-in sessions, when "
        "`GEOIP_PATH` names a MaxMind database and `geoip2` is installed "
        "(see [](users.md#where-a-session-is)).",
    )
    USER_AGENT_MAX_LENGTH = _whole(
        256,
        "Characters of the user agent kept.",
        smallest=1,
        none_ok=False,
        convert=_int_or_zero,
        check="django_charon_sessions.E016",
        hint="The default, 256, keeps common browsers' headers whole.",
    )
    TRUSTED_PROXIES: Setting[list[str]] = Setting(
        [],
        "Addresses of the proxies in front of Django, whose `X-Forwarded-For` is believed "
        "(python-ipware).",
        check="django_charon_sessions.E017",
        rule="a list of IP addresses (strings)",
        valid=lambda v: isinstance(v, (list, tuple)) and all(isinstance(p, str) for p in v),
        convert=lambda v: [str(p) for p in v],
        hint='For example ["10.0.0.1", "10.0.0.2"]: the proxies in front of Django.',
    )
    PROXY_COUNT = _whole(
        None,
        "Or: how many proxies are in front of Django.",
        smallest=1,
        check="django_charon_sessions.E018",
        hint="The number of proxies in front of Django, or None.",
        convert=_int_or_none,
    )
    END_OTHER_SESSIONS_ON_PASSWORD_CHANGE = _flag(
        True, "A new password ends the user's other sessions."
    )
    END_SESSIONS_ON_DEACTIVATE = _flag(
        True, "Saving a user with `is_active = False` ends all their sessions."
    )
    END_SESSIONS_ON_DELETE = _flag(True, "Deleting a user ends all their sessions.")
    ADMIN = _flag(
        True,
        "Give the admin registered for `AUTH_USER_MODEL` on the default admin site the "
        "sessions pages (see [](admin.md)). `False` when you add `SessionsAdminMixin` "
        "yourself, or want no such pages.",
    )
    SITE_ACTIVITY = _flag(
        False,
        "Keep site-wide activity sets, for the admin's site-wide Sessions page to list the "
        "most recently seen sessions of all users, search them by IP or browser and count "
        "who is online. Costs Redis about 120 bytes per signed-in session (see "
        "[](admin.md#the-site-wide-sessions-page)).",
    )
    REAUTHENTICATE_AFTER = _whole(
        3600,
        "Seconds after sign-in when the users' own sessions page asks for the password before "
        "ending sessions; `0` always asks, `None` never does.",
        smallest=0,
        check="django_charon_sessions.E020",
        hint="Seconds after sign-in; 0 always asks for the password, None never does. "
        "The default is 3600.",
        convert=_int_or_none,
    )
    LOAD_FUNCTIONS = _flag(
        True,
        "Load the function library when Redis lacks it. Set `False` when the app's Redis user "
        "may not run `FUNCTION LOAD`, and load the library ahead of time (see "
        "[](production.md#acls-and-loading-the-functions-ahead-of-time)).",
    )

    @property
    def raw(self) -> dict[str, Any]:
        """Return ``CHARON_SESSIONS`` as given."""
        return raw_settings()

    @property
    def URL_GIVEN(self) -> bool:  # noqa: N802 - reads like the settings
        """Whether ``URL`` is set (``URL`` itself falls back to :data:`DEFAULT_URL`)."""
        return bool(raw_settings().get("URL"))


#: Every key ``CHARON_SESSIONS`` understands, in the order the docs list them.
SETTINGS: tuple[Setting[Any], ...] = tuple(
    value for value in vars(CharonSettings).values() if isinstance(value, Setting)
)

#: The keys ``CHARON_SESSIONS`` understands, with their defaults.
DEFAULTS: dict[str, Any] = {s.name: s.default for s in SETTINGS}


def parallel_test_worker() -> str:
    """Return the name of the parallel test worker this process is, or "" outside one.

    Each worker of a parallel test run has its own database, where user ids
    start from 1 again; sharing one Redis, the workers would share per-user
    indexes and end each other's sessions. So a worker's keys get its own
    prefix. pytest-xdist names its workers in ``PYTEST_XDIST_WORKER`` ("gw0");
    Django's ``manage.py test --parallel`` numbers its processes from 1 once
    they start (read here at each call: with ``fork`` a worker learns its
    number after the settings were loaded).
    """
    name = os.environ.get("PYTEST_XDIST_WORKER", "")
    if name:
        return name if name.isalnum() else "".join(c for c in name if c.isalnum())
    runner = sys.modules.get("django.test.runner")
    number = getattr(runner, "_worker_id", 0) if runner is not None else 0
    return f"w{number}" if isinstance(number, int) and number > 0 else ""


#: The settings object the app reads: ``charon_settings.KEY_PREFIX`` and so on.
charon_settings = CharonSettings()
