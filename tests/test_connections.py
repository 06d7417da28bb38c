"""Where the connection comes from: URL, a shared cache's connection, a factory."""

from __future__ import annotations

import pytest
from django.test import override_settings

from django_charon_sessions.client import get_client
from django_charon_sessions.engine import SessionStore
from django_charon_sessions.errors import describe_url
from django_charon_sessions.keyspace import Keys

pytestmark = pytest.mark.backends("redis")

CACHE_BACKENDS = {
    "django-redis": ("django_redis.cache.RedisCache", {"SOCKET_TIMEOUT": 1}),
    "django": ("django.core.cache.backends.redis.RedisCache", {"socket_timeout": 1}),
}


@pytest.fixture(params=sorted(CACHE_BACKENDS))
def cache_alias(request, backend):
    path, options = CACHE_BACKENDS[request.param]
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "shared": {"BACKEND": path, "LOCATION": backend.config["URL"], "OPTIONS": options},
    }
    with override_settings(CACHES=caches, CHARON_SESSIONS={"CACHE_ALIAS": "shared"}):
        yield request.param


def test_cache_alias_shares_the_caches_connection(backend, cache_alias):
    from django.core.cache import caches

    s = SessionStore()
    s["a"] = 1
    s.save()
    assert backend.admin.exists(Keys.for_session("charon", s.session_key).record) == 1
    client = get_client()
    if cache_alias == "django-redis":
        assert client.connection_pool is caches["shared"].client.get_client().connection_pool
    assert dict(SessionStore(s.session_key).items()) == {"a": 1}


async def test_cache_alias_async(backend, cache_alias):
    s = SessionStore()
    await s.aset("a", 2)
    await s.asave()
    assert await SessionStore(s.session_key).aget("a") == 2


def test_describe_url_masks_the_password():
    assert (
        describe_url("redis://app:s3cret@db.example:6380/2") == "redis://app:***@db.example:6380/2"
    )
    assert describe_url("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


def test_url_with_database_number(backend):
    url = backend.config["URL"].rsplit("/", 1)[0] + "/3"
    with override_settings(CHARON_SESSIONS={"URL": url}):
        s = SessionStore()
        s["a"] = 1
        s.save()
    key = Keys.for_session("charon", s.session_key).record
    assert backend.admin.exists(key) == 0
    db3 = backend.admin.__class__(
        host="127.0.0.1", port=backend.admin.connection_pool.connection_kwargs["port"], db=3
    )
    assert db3.exists(key) == 1
    db3.flushdb()
