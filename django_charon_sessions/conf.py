"""The ``CHARON_SESSIONS`` setting, read lazily through one typed object.

Every attribute reads Django's settings at access time, so
``override_settings`` works everywhere. Values are not validated here; the
system checks in :mod:`django_charon_sessions.checks` do that and name the
fix.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from django.conf import settings

#: The ``SESSION_ENGINE`` that selects this package's session store.
ENGINE = "django_charon_sessions.engine"

#: The keys ``CHARON_SESSIONS`` understands, with their defaults.
DEFAULTS: dict[str, Any] = {
    "URL": None,
    "CACHE_ALIAS": None,
    "KEY_PREFIX": "charon",
    "TAG_SECRET": None,
    "CLUSTER": False,
    "CONNECTION_FACTORY": None,
    "SOCKET_CONNECT_TIMEOUT": 1.0,
    "SOCKET_TIMEOUT": 1.0,
    "MAX_CONNECTIONS": None,
    "ABSOLUTE_MAX_AGE": None,
    "LAST_SEEN_INTERVAL": 60,
    "LOAD_FUNCTIONS": True,
    "MAX_SESSIONS_PER_USER": None,
    "CAPTURE_IP": True,
    "CAPTURE_USER_AGENT": True,
    "USER_AGENT_MAX_LENGTH": 256,
    "TRUSTED_PROXIES": [],
    "PROXY_COUNT": None,
    "END_OTHER_SESSIONS_ON_PASSWORD_CHANGE": True,
    "END_SESSIONS_ON_DEACTIVATE": True,
    "END_SESSIONS_ON_DELETE": True,
    "ADMIN": True,
    "REAUTHENTICATE_AFTER": 3600,
}

#: Used when neither ``URL`` nor ``CACHE_ALIAS`` nor ``CONNECTION_FACTORY`` is set.
DEFAULT_URL = "redis://127.0.0.1:6379/0"


class CharonSettings:
    """Typed, lazy view of ``settings.CHARON_SESSIONS``."""

    @property
    def raw(self) -> dict[str, Any]:
        value = getattr(settings, "CHARON_SESSIONS", {})
        return value if isinstance(value, dict) else {}

    def _get(self, name: str) -> Any:
        return self.raw.get(name, DEFAULTS[name])

    @property
    def URL(self) -> str:  # noqa: N802 - mirrors the setting's key
        url = self._get("URL")
        return str(url) if url else DEFAULT_URL

    @property
    def URL_GIVEN(self) -> bool:  # noqa: N802
        return bool(self._get("URL"))

    @property
    def CACHE_ALIAS(self) -> str | None:  # noqa: N802
        alias = self._get("CACHE_ALIAS")
        return str(alias) if alias else None

    @property
    def KEY_PREFIX(self) -> str:  # noqa: N802
        """The prefix of every key; in a parallel test worker, followed by ``:<worker>``."""
        prefix = str(self._get("KEY_PREFIX"))
        worker = parallel_test_worker()
        return f"{prefix}:{worker}" if worker else prefix

    @property
    def TAG_SECRET(self) -> str | None:  # noqa: N802
        """The secret user tags are derived from; None to follow ``SECRET_KEY``."""
        value = self._get("TAG_SECRET")
        return str(value) if value else None

    @property
    def CLUSTER(self) -> bool:  # noqa: N802
        return bool(self._get("CLUSTER"))

    @property
    def CONNECTION_FACTORY(self) -> str | None:  # noqa: N802
        factory = self._get("CONNECTION_FACTORY")
        return str(factory) if factory else None

    @property
    def SOCKET_CONNECT_TIMEOUT(self) -> float:  # noqa: N802
        return float(self._get("SOCKET_CONNECT_TIMEOUT"))

    @property
    def SOCKET_TIMEOUT(self) -> float:  # noqa: N802
        return float(self._get("SOCKET_TIMEOUT"))

    @property
    def MAX_CONNECTIONS(self) -> int | None:  # noqa: N802
        value = self._get("MAX_CONNECTIONS")
        return None if value is None else int(value)

    @property
    def ABSOLUTE_MAX_AGE(self) -> int:  # noqa: N802
        """Seconds from creation after which a session ends; 0 for none."""
        value = self._get("ABSOLUTE_MAX_AGE")
        return int(value) if value else 0

    @property
    def LAST_SEEN_INTERVAL(self) -> int:  # noqa: N802
        """Seconds between two "last seen" updates of one session; 0 for never."""
        return int(self._get("LAST_SEEN_INTERVAL") or 0)

    @property
    def LOAD_FUNCTIONS(self) -> bool:  # noqa: N802
        """Whether the app may ``FUNCTION LOAD`` its library when it is missing."""
        return bool(self._get("LOAD_FUNCTIONS"))

    @property
    def MAX_SESSIONS_PER_USER(self) -> int:  # noqa: N802
        """Most live sessions a user may have (the oldest end first); 0 for no limit."""
        return int(self._get("MAX_SESSIONS_PER_USER") or 0)

    @property
    def CAPTURE_IP(self) -> bool:  # noqa: N802
        return bool(self._get("CAPTURE_IP"))

    @property
    def CAPTURE_USER_AGENT(self) -> bool:  # noqa: N802
        return bool(self._get("CAPTURE_USER_AGENT"))

    @property
    def USER_AGENT_MAX_LENGTH(self) -> int:  # noqa: N802
        return int(self._get("USER_AGENT_MAX_LENGTH"))

    @property
    def TRUSTED_PROXIES(self) -> list[str]:  # noqa: N802
        return [str(p) for p in self._get("TRUSTED_PROXIES") or []]

    @property
    def PROXY_COUNT(self) -> int | None:  # noqa: N802
        value = self._get("PROXY_COUNT")
        return None if value is None else int(value)

    @property
    def END_OTHER_SESSIONS_ON_PASSWORD_CHANGE(self) -> bool:  # noqa: N802
        return bool(self._get("END_OTHER_SESSIONS_ON_PASSWORD_CHANGE"))

    @property
    def END_SESSIONS_ON_DEACTIVATE(self) -> bool:  # noqa: N802
        return bool(self._get("END_SESSIONS_ON_DEACTIVATE"))

    @property
    def END_SESSIONS_ON_DELETE(self) -> bool:  # noqa: N802
        return bool(self._get("END_SESSIONS_ON_DELETE"))

    @property
    def ADMIN(self) -> bool:  # noqa: N802
        """Whether the user model's admin gets the sessions pages without code."""
        return bool(self._get("ADMIN"))

    @property
    def REAUTHENTICATE_AFTER(self) -> int | None:  # noqa: N802
        """Seconds after sign-in when ending sessions asks for the password; None never."""
        value = self._get("REAUTHENTICATE_AFTER")
        return None if value is None else int(value)


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
