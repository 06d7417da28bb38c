"""Redis trouble is loud and bounded, never silent data loss (DESIGN invariant 6).

These tests stop, stall and wipe their own redis-server.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import pytest
from django.test import Client, override_settings

from django_charon_sessions import functions
from django_charon_sessions.engine import SessionStore
from django_charon_sessions.exceptions import RedisUnavailable
from tests.harness import RedisServer, require_redis

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
    request.save()  # must load first, not write an empty session over the real one
    assert dict(SessionStore(key).items()) == {"a": 1, "b": 2}


def test_function_flush_is_survived(server):
    key = stored({"a": 1})
    server.client().function_flush()
    assert dict(SessionStore(key).items()) == {"a": 1}
    libraries = [entry[1] for entry in server.client().function_list()]
    assert functions.LIBRARY.encode() in libraries


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
