"""Fixtures: the three Redis backends every engine test runs against.

``backend`` is parametrized over ``fake`` (fakeredis, in process),
``redis`` (a real redis-server started for the session) and ``cluster``
(three real primaries joined into a Redis Cluster). Without redis-server the
real backends are skipped, except under ``CI=true``, where that is an error.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fakeredis
import pytest
import redis
from django.test import override_settings

from testproject.fake import SERVER as FAKE_SERVER
from tests.harness import RedisCluster, RedisServer, describe_servers, require_redis

if TYPE_CHECKING:
    from collections.abc import Iterator

BACKENDS = ("fake", "redis", "cluster")


def pytest_report_header(config: pytest.Config) -> str:
    # Which server build ran belongs in every log (tox runs several: see tox.ini).
    return describe_servers()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("CHARON_LONG") == "1":
        return
    skip = pytest.mark.skip(reason="long run: set CHARON_LONG=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        marker = metafunc.definition.get_closest_marker("backends")
        names = marker.args if marker and marker.args else BACKENDS
        metafunc.parametrize("backend", names, indirect=True)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    if not require_redis():
        pytest.skip("redis-server is not installed")
    server = RedisServer().start()
    yield server
    server.close()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    if not require_redis():
        pytest.skip("redis-server is not installed")
    cluster = RedisCluster().start()
    yield cluster
    cluster.close()


@dataclass
class Backend:
    """One Redis backend under test, with a raw client to inspect it."""

    name: str
    admin: Any
    config: dict[str, Any]

    @contextmanager
    def settings(self, **extra: Any) -> Iterator[None]:
        with override_settings(CHARON_SESSIONS={**self.config, **extra}):
            yield

    def keys(self) -> list[bytes]:
        return sorted(self.admin.scan_iter(count=1000))

    def dump(self) -> list[bytes]:
        """Every key, field, member and value in Redis, as raw bytes."""
        out: list[bytes] = []
        for key in self.keys():
            out.append(key)
            kind = self.admin.type(key)
            kind = kind.decode() if isinstance(kind, bytes) else kind
            if kind == "hash":
                for f, v in self.admin.hgetall(key).items():
                    out += [f, v]
            elif kind == "zset":
                out += [m for m, _ in self.admin.zrange(key, 0, -1, withscores=True)]
            elif kind == "string":
                out.append(self.admin.get(key))
        return out


def _make_backend(request: pytest.FixtureRequest, name: str) -> Backend:
    if name == "fake":
        admin: Any = fakeredis.FakeRedis(server=FAKE_SERVER)
        return Backend(name, admin, {"CONNECTION_FACTORY": "testproject.fake.connection"})
    if name == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        return Backend(name, server.client(), {"URL": server.url})
    cluster: RedisCluster = request.getfixturevalue("redis_cluster")
    return Backend(name, cluster.client(), {"URL": cluster.url, "CLUSTER": True})


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    b = _make_backend(request, request.param)
    b.admin.flushall()
    with override_settings(CHARON_SESSIONS=b.config):
        yield b
    if isinstance(b.admin, (redis.Redis, redis.cluster.RedisCluster)):
        b.admin.close()


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
