"""Redis trouble is loud and bounded, never silent data loss (DESIGN invariant 6).

These tests stop, stall and wipe their own redis-server.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
import redis
import redis.asyncio.connection
import redis.connection
from django.conf import settings
from django.test import Client, override_settings

from django_charon_sessions import api, library
from django_charon_sessions.engine import SessionStore
from django_charon_sessions.exceptions import RedisUnavailable
from django_charon_sessions.keyspace import new_session_key, random_tag
from tests.harness import RedisServer, free_port, require_redis

if TYPE_CHECKING:
    from collections.abc import Iterator

TIMEOUT = 0.5


@pytest.fixture
def server() -> Iterator[RedisServer]:
    if not require_redis():
        pytest.skip("redis-server is not installed")
    srv = RedisServer().start()
    config = {"URL": srv.url, "SOCKET_TIMEOUT": TIMEOUT, "SOCKET_CONNECT_TIMEOUT": TIMEOUT}
    with override_settings(CHARON_SESSIONS=config):
        yield srv
    srv.close()


def stored(data: dict[str, object]) -> str:
    s = SessionStore()
    s.update(data)
    s.save()
    assert s.session_key
    return s.session_key


def stall(server: RedisServer, seconds: float) -> threading.Thread:
    """Make the server busy for ``seconds`` (DEBUG SLEEP), from another connection."""
    client = server.client()
    thread = threading.Thread(target=client.execute_command, args=("DEBUG", "SLEEP", seconds))
    thread.start()
    time.sleep(0.1)
    return thread


def test_stopped_server_gives_the_documented_error_in_time(server):
    key = stored({"a": 1})
    server.stop()
    started = time.monotonic()
    with pytest.raises(RedisUnavailable) as info:
        SessionStore(key).load()
    elapsed = time.monotonic() - started
    assert elapsed < TIMEOUT + 1.0
    message = str(info.value)
    assert "Session store unavailable" in message
    assert f"127.0.0.1:{server.port}" in message
    assert key not in message


async def test_stopped_server_async(server):
    key = stored({"a": 1})
    server.stop()
    started = time.monotonic()
    with pytest.raises(RedisUnavailable):
        await SessionStore(key).aload()
    assert time.monotonic() - started < TIMEOUT + 1.0


def test_slow_server_times_out_then_recovers(server):
    key = stored({"a": 1})
    thread = stall(server, 2)
    started = time.monotonic()
    with pytest.raises(RedisUnavailable) as info:
        SessionStore(key).load()
    assert time.monotonic() - started < TIMEOUT + 1.0
    assert "Timeout" in str(info.value)
    thread.join()
    assert dict(SessionStore(key).items()) == {"a": 1}


def test_failed_load_never_becomes_an_overwriting_save(server):
    key = stored({"a": 1, "b": 2})
    request = SessionStore(key)
    thread = stall(server, 1.5)
    with pytest.raises(RedisUnavailable):
        request["c"] = 3  # the load behind this times out
    thread.join()
    # Redis is back, but this request's store failed: its save fails too,
    # never writing an empty session over the real one.
    with pytest.raises(RedisUnavailable):
        request.save()
    assert dict(SessionStore(key).items()) == {"a": 1, "b": 2}
    fresh = SessionStore(key)  # the next request
    fresh["c"] = 3
    fresh.save()
    assert dict(SessionStore(key).items()) == {"a": 1, "b": 2, "c": 3}


# -- a failed load fails once per request -----------------------------------------


@pytest.fixture
def attempts(monkeypatch) -> list[str]:
    """Record every TCP connection redis-py opens, sync or async."""
    seen: list[str] = []
    sync_connect = redis.connection.Connection._connect
    async_connect = redis.asyncio.connection.Connection._connect

    def counted(self: Any) -> Any:
        seen.append("sync")
        return sync_connect(self)

    async def acounted(self: Any) -> Any:
        seen.append("async")
        return await async_connect(self)

    monkeypatch.setattr(redis.connection.Connection, "_connect", counted)
    monkeypatch.setattr(redis.asyncio.connection.Connection, "_connect", acounted)
    return seen


@pytest.fixture
def closed_port() -> Iterator[str]:
    """A loopback port nothing listens on: every connection is refused."""
    config = {
        "URL": f"redis://127.0.0.1:{free_port()}/0",
        "SOCKET_TIMEOUT": TIMEOUT,
        "SOCKET_CONNECT_TIMEOUT": TIMEOUT,
    }
    with override_settings(CHARON_SESSIONS=config):
        yield new_session_key(random_tag())


@pytest.fixture
def unreachable_cluster() -> Iterator[str]:
    """``CLUSTER`` with a node nothing listens on: redis-py's Cluster client cannot start."""
    config = {
        "URL": f"redis://127.0.0.1:{free_port()}/0",
        "CLUSTER": True,
        "SOCKET_TIMEOUT": TIMEOUT,
        "SOCKET_CONNECT_TIMEOUT": TIMEOUT,
    }
    with override_settings(CHARON_SESSIONS=config):
        yield new_session_key(random_tag())


def test_an_unreachable_cluster_gives_the_documented_error(unreachable_cluster, django_user_model):
    # redis-py says so with RedisClusterException, which is no RedisError: the
    # sync client when it is made, the async one on its first command.
    user = django_user_model(pk=1, username="ada")
    for attempt in (
        SessionStore(unreachable_cluster).load,
        SessionStore().save,
        lambda: api.list_sessions(user),
        lambda: api.end_sessions(user),
    ):
        with pytest.raises(RedisUnavailable, match="Redis Cluster at redis://127"):
            attempt()


async def test_an_unreachable_cluster_gives_the_documented_error_async(unreachable_cluster):
    with pytest.raises(RedisUnavailable, match="Redis Cluster at redis://127"):
        await SessionStore(unreachable_cluster).aload()
    with pytest.raises(RedisUnavailable):
        await SessionStore().asave()


def test_a_failed_load_is_not_retried_by_the_same_store(closed_port, attempts):
    store = SessionStore(closed_port)
    with pytest.raises(RedisUnavailable) as first:
        store.load()
    assert attempts == ["sync"]
    for again in (
        store.load,
        lambda: store["x"],
        lambda: store.get("x"),
        store.save,
        store.cycle_key,
        store.delete,
        lambda: store.exists(closed_port),
    ):
        with pytest.raises(RedisUnavailable) as later:
            again()
        assert str(later.value) == str(first.value)
    assert attempts == ["sync"]  # no second connection, no second timeout
    with pytest.raises(RedisUnavailable):
        SessionStore(closed_port).load()  # another request tries again
    assert attempts == ["sync", "sync"]


async def test_a_failed_aload_is_not_retried_by_the_same_store(closed_port, attempts):
    store = SessionStore(closed_port)
    with pytest.raises(RedisUnavailable):
        await store.aload()
    for again in (store.aload, store.asave, store.acycle_key, store.adelete, store.aget("x")):
        with pytest.raises(RedisUnavailable):
            await (again() if callable(again) else again)
    assert attempts == ["async"]


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [True, False])
def test_debug_page_does_not_wait_for_redis_again(closed_port, attempts, debug):
    client = Client(raise_request_exception=False)
    client.cookies[settings.SESSION_COOKIE_NAME] = closed_port
    with override_settings(DEBUG=debug):
        response = client.get("/session.json")
    assert response.status_code == 500
    if debug:
        # The debug page asked for request.user, which reads the session again.
        assert "RedisUnavailable" in response.text
        assert "[unable to retrieve the current user]" in response.text
    assert attempts == ["sync"]  # one connection attempt: one timeout at most


def test_function_flush_is_survived(server):
    key = stored({"a": 1})
    server.client().function_flush()
    assert dict(SessionStore(key).items()) == {"a": 1}
    libraries = [entry[1] for entry in server.client().function_list()]
    assert library.LIBRARY.encode() in libraries


def test_restart_without_persistence_is_survived(server):
    key = stored({"a": 1})
    server.restart()  # data and functions are gone
    assert dict(SessionStore(key).items()) == {}
    assert stored({"b": 2})


@pytest.mark.django_db
def test_a_view_fails_loudly_when_redis_is_down(server):
    client = Client()
    client.get("/set/a/1/")
    server.stop()
    with pytest.raises(RedisUnavailable):
        client.get("/session.json")
