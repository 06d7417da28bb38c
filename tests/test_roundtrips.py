"""Every operation is one round trip (DESIGN invariant 7), counted by MONITOR.

MONITOR on each server lists every command it receives; commands run inside
a function are marked as coming from Lua and are not round trips.
"""

from __future__ import annotations

import pytest
import redis

from django_charon_sessions.client import get_client
from django_charon_sessions.engine import SessionStore
from tests.commands import count, monitored

pytestmark = pytest.mark.backends("redis", "cluster")


def warm() -> SessionStore:
    """A stored authenticated session; also loads the library and opens connections."""
    s = SessionStore()
    s.update({"_auth_user_id": "500", "a": 1})
    s.save()
    SessionStore(s.session_key).load()
    client = get_client()
    if isinstance(client, redis.cluster.RedisCluster):
        client.ping(target_nodes=redis.cluster.RedisCluster.ALL_NODES)  # open every pool
    return s


def test_load_is_one_call(backend):
    key = warm().session_key
    assert count(backend, lambda: SessionStore(key).load()) == ["FCALL"]


def test_save_is_one_call(backend):
    key = warm().session_key
    s = SessionStore(key)
    s._get_session()

    def change() -> None:
        s["b"] = 2
        s.save()

    assert count(backend, change) == ["FCALL"]


def test_unchanged_save_sends_no_record(backend):
    key = warm().session_key
    s = SessionStore(key)
    s._get_session()
    with monitored(backend) as commands:
        s.save()
    assert len(commands) == 1
    assert commands[0].split()[0].upper() == "FCALL"
    # save's ARGV ends: user, sealed record (empty: only the expiry moves),
    # absolute lifetime. MONITOR prints an empty argument as nothing.
    assert commands[0].endswith(" 500  0")


def test_create_is_one_call(backend):
    warm()

    def create() -> None:
        s = SessionStore()
        s["a"] = 1
        s.save()

    assert count(backend, create) == ["FCALL"]


def test_delete_is_one_call(backend):
    key = warm().session_key
    assert count(backend, lambda: SessionStore(key).delete()) == ["FCALL"]


def test_cycle_is_one_call(backend):
    s = warm()
    s._get_session()
    assert count(backend, s.cycle_key) == ["FCALL"]


def test_exists_is_one_read_only_call(backend):
    key = warm().session_key
    assert count(backend, lambda: SessionStore().exists(key)) == ["FCALL_RO"]


def test_a_login_request_is_three_single_calls(backend):
    warm()
    anon = SessionStore()
    anon["cart"] = [1]
    anon.save()

    def login_request() -> None:
        s = SessionStore(anon.session_key)
        s._get_session()  # load
        s.cycle_key()  # deletes the anonymous key
        s["_auth_user_id"] = "501"
        s.save()  # creates the session in the user's slot, indexed

    assert count(backend, login_request) == ["FCALL", "FCALL", "FCALL"]
