"""System checks: every id fires on the setting it guards, and only then."""

from __future__ import annotations

import pytest
from django.test import override_settings

from django_charon_sessions import checks, functions

GOOD = {"URL": "redis://127.0.0.1:6379/0"}


def ids(config: object, **other: object) -> list[str]:
    with override_settings(CHARON_SESSIONS=config, **other):
        return [m.id for m in checks.check_settings()]


def test_good_settings_pass():
    assert ids(GOOD) == []
    assert ids({}) == []


@pytest.mark.parametrize(
    ("config", "other", "expected"),
    [
        ("redis://x", {}, "E001"),
        ({"URL": "redis://x", "TIMEOUT": 1}, {}, "W001"),
        ({"URL": "redis://x", "CACHE_ALIAS": "default"}, {}, "E002"),
        ({"URL": "http://x"}, {}, "E003"),
        ({"URL": 5}, {}, "E003"),
        ({"CACHE_ALIAS": "nope"}, {}, "E004"),
        ({"CACHE_ALIAS": "default"}, {}, "E005"),
        ({"KEY_PREFIX": "a{b}"}, {}, "E006"),
        ({"KEY_PREFIX": ""}, {}, "E006"),
        ({"KEY_PREFIX": "a*"}, {}, "E006"),
        ({"SOCKET_TIMEOUT": 0}, {}, "E007"),
        ({"SOCKET_CONNECT_TIMEOUT": "1"}, {}, "E007"),
        ({}, {"SESSION_SERIALIZER": "myapp.PickleSerializer"}, "E008"),
        ({"ABSOLUTE_MAX_AGE": -1}, {}, "E009"),
        ({"ABSOLUTE_MAX_AGE": 1.5}, {}, "E009"),
        ({"LAST_SEEN_INTERVAL": -1}, {}, "E010"),
        ({"URL": "unix:///tmp/r.sock", "CLUSTER": True}, {}, "E011"),
        ({"CONNECTION_FACTORY": "no.such.module.factory"}, {}, "E012"),
        ({"CONNECTION_FACTORY": "django.conf.settings"}, {}, "E012"),
        ({"MAX_CONNECTIONS": 0}, {}, "E013"),
        ({"CLUSTER": "yes"}, {}, "E014"),
        ({}, {"SESSION_ENGINE": "django.contrib.sessions.backends.db"}, "W003"),
        ({}, {"MIDDLEWARE": ["django.contrib.sessions.middleware.SessionMiddleware"]}, "W004"),
        (
            {},
            {
                "MIDDLEWARE": [
                    "django_charon_sessions.middleware.SessionMetadataMiddleware",
                    "django.contrib.sessions.middleware.SessionMiddleware",
                ]
            },
            "W004",
        ),
        ({"CAPTURE_IP": 1}, {}, "E014"),
        ({"END_SESSIONS_ON_DELETE": "no"}, {}, "E014"),
        ({"MAX_SESSIONS_PER_USER": 0}, {}, "E015"),
        ({"USER_AGENT_MAX_LENGTH": -3}, {}, "E016"),
        ({"TRUSTED_PROXIES": "10.0.0.1"}, {}, "E017"),
        ({"TRUSTED_PROXIES": [10]}, {}, "E017"),
        ({"PROXY_COUNT": 0}, {}, "E018"),
    ],
)
def test_each_check_id(config, other, expected):
    found = ids(config, **other)
    assert f"django_charon_sessions.{expected}" in found


def test_cache_alias_checks():
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "redis": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/1",
        },
        "timed": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:6379/1",
            "OPTIONS": {"SOCKET_TIMEOUT": 1},
        },
    }
    with override_settings(CACHES=caches):
        assert ids({"CACHE_ALIAS": "redis"}) == ["django_charon_sessions.W002"]
        assert ids({"CACHE_ALIAS": "timed"}) == []
        assert "django_charon_sessions.E011" in ids({"CACHE_ALIAS": "timed", "CLUSTER": True})


def test_checks_are_registered_and_do_no_io_without_deploy():
    from django.core.checks import run_checks

    with override_settings(CHARON_SESSIONS={"URL": "redis://127.0.0.1:1/0"}):
        messages = run_checks()  # port 1: any I/O here would fail
    assert not [m for m in messages if m.id and m.id.startswith("django_charon_sessions")]


@pytest.mark.backends("redis", "cluster")
def test_deploy_check_passes_and_loads_the_library(backend):
    backend.admin.function_flush()
    assert checks.check_redis() == []
    assert functions.LIBRARY in checks._libraries(backend.admin)


def test_deploy_check_reports_unreachable_redis():
    with override_settings(
        CHARON_SESSIONS={"URL": "redis://127.0.0.1:1/0", "SOCKET_CONNECT_TIMEOUT": 0.2}
    ):
        found = checks.check_redis()
    assert [m.id for m in found] == ["django_charon_sessions.E101"]


@pytest.mark.backends("redis")
def test_deploy_check_without_load_permission(backend):
    backend.admin.function_flush()
    with backend.settings(LOAD_FUNCTIONS=False):
        assert [m.id for m in checks.check_redis()] == ["django_charon_sessions.E104"]


def test_version_parsing():
    assert checks._version_tuple("6.2.14") < (7, 0) <= checks._version_tuple("7.0.15")
    assert checks._version_tuple("7.2.4") >= (7, 0)


def test_missing_optional_libraries(monkeypatch):
    monkeypatch.setattr(checks, "_installed", lambda module: False)
    assert "django_charon_sessions.E019" in ids({"PROXY_COUNT": 1})
    assert ids({}) == ["django_charon_sessions.W005"]
    assert ids({"CAPTURE_USER_AGENT": False}) == []
