"""Forced interleavings: two store objects play two concurrent requests.

Each test fixes the order of the steps, so it fails deterministically on an
engine that reads in Python and then writes (for example Django's cache
engine: get, then set).
"""

from __future__ import annotations

import threading

import pytest
from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.contrib.sessions.exceptions import SessionInterrupted

from django_charon_sessions.engine import SAVE_ATTEMPTS, SessionStore
from django_charon_sessions.keyspace import TAG_LENGTH, Keys, user_tag


def stored(data: dict[str, object]) -> str:
    s = SessionStore()
    s.update(data)
    s.save()
    assert s.session_key is not None
    return s.session_key


def both_loaded(key: str) -> tuple[SessionStore, SessionStore]:
    """Two concurrent requests of one session, both past their load."""
    request_a, request_b = SessionStore(key), SessionStore(key)
    request_a._get_session()
    request_b._get_session()
    return request_a, request_b


def test_update_after_delete_raises_and_writes_nothing(backend):
    key = stored({"a": 1})
    request_a = SessionStore(key)
    request_a._get_session()  # the request reads its session
    SessionStore(key).delete()  # request B logs out
    request_a["a"] = 2
    with pytest.raises(UpdateError):
        request_a.save()
    assert backend.keys() == []


def test_update_after_delete_of_authenticated_session(backend):
    key = stored({"_auth_user_id": "1", "a": 1})
    request_a = SessionStore(key)
    request_a._get_session()  # the request reads its session
    SessionStore(key).flush()
    request_a["a"] = 2
    with pytest.raises(UpdateError):
        request_a.save()
    assert backend.keys() == []


def test_touch_only_save_after_delete_raises(backend):
    # SESSION_SAVE_EVERY_REQUEST: a save that changes nothing must not
    # recreate the session either.
    key = stored({"a": 1})
    request_a = SessionStore(key)
    request_a._get_session()  # the request reads its session
    SessionStore(key).delete()
    with pytest.raises(UpdateError):
        request_a.save()
    assert backend.keys() == []


def test_concurrent_changes_to_different_keys_both_survive(backend):
    key = stored({"x": 0, "y": 0})
    request_a, request_b = both_loaded(key)
    request_a["x"] = "from A"
    request_b["y"] = "from B"
    request_a.save()
    request_b.save()
    assert dict(SessionStore(key).items()) == {"x": "from A", "y": "from B"}


def test_concurrent_delete_and_add_of_different_keys(backend):
    key = stored({"x": 1, "y": 1})
    request_a, request_b = both_loaded(key)
    del request_a["x"]
    request_b["z"] = 1
    request_a.save()
    request_b.save()
    assert dict(SessionStore(key).items()) == {"y": 1, "z": 1}


def test_same_key_is_last_writer_wins(backend):
    key = stored({"x": 0})
    request_a, request_b = both_loaded(key)
    request_a["x"] = "A"
    request_b["x"] = "B"
    request_a.save()
    request_b.save()
    assert SessionStore(key)["x"] == "B"


def test_threads_with_a_barrier_keep_every_key(backend):
    key = stored({})
    workers = SAVE_ATTEMPTS  # each round one save wins: all of them fit the retries
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def request(n: int) -> None:
        try:
            s = SessionStore(key)
            s._get_session()  # the request reads its session
            barrier.wait(timeout=10)  # everyone has loaded before anyone saves
            s[f"k{n}"] = n
            s.save()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=request, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert dict(SessionStore(key).items()) == {f"k{n}": n for n in range(workers)}


def test_ending_all_of_a_users_sessions_beats_an_inflight_save(backend):
    key = stored({"_auth_user_id": "42", "a": 1})
    in_flight = SessionStore(key)
    in_flight._get_session()  # the request reads its session
    # "Log out everywhere" ends sessions by deleting the user's index.
    keys = Keys.for_session("charon", key)
    backend.admin.delete(keys.index, keys.meta)
    in_flight["a"] = 2
    with pytest.raises(UpdateError):
        in_flight.save()
    assert dict(SessionStore(key).items()) == {}
    assert backend.keys() == []  # the dead session's data went with it


def test_ended_session_is_not_brought_back_by_cycle_key(backend):
    key = stored({"_auth_user_id": "42", "a": 1})
    in_flight = SessionStore(key)
    in_flight._get_session()  # the request reads its session
    keys = Keys.for_session("charon", key)
    backend.admin.delete(keys.index, keys.meta)
    with pytest.raises(SessionInterrupted):
        in_flight.cycle_key()  # e.g. update_session_auth_hash() after a password change
    assert backend.keys() == []


def test_create_never_overwrites_an_existing_key(backend):
    key = stored({"owner": "first"})
    second = SessionStore(key)
    second._session_cache = {"owner": "second"}
    with pytest.raises(CreateError):
        second.save(must_create=True)
    assert SessionStore(key)["owner"] == "first"


def test_login_moves_the_session_to_the_users_slot(backend):
    key = stored({"cart": [1, 2]})
    request = SessionStore(key)
    request._get_session()  # the request reads its session
    # What django.contrib.auth.login() does to the session.
    request.cycle_key()
    request["_auth_user_id"] = "1001"
    request.save()
    new_key = request.session_key
    assert new_key[:TAG_LENGTH] == user_tag("1001") != key[:TAG_LENGTH]
    assert not request.exists(key)
    old = Keys.for_session("charon", key)
    assert backend.admin.exists(old.record) == 0
    new = Keys.for_session("charon", new_key)
    assert backend.admin.zrange(new.index, 0, -1) == [new.member.encode()]
    assert dict(SessionStore(new_key).items()) == {"cart": [1, 2], "_auth_user_id": "1001"}
    if backend.name == "cluster":
        slot = backend.admin.keyslot
        assert slot(new.record) == slot(new.index) == slot(new.meta)


def test_user_id_set_without_cycle_still_moves(backend):
    key = stored({"a": 1})
    s = SessionStore(key)
    s["_auth_user_id"] = "77"
    s.save()
    assert s.session_key[:TAG_LENGTH] == user_tag("77")
    assert not s.exists(key)
    assert dict(SessionStore(s.session_key).items()) == {"a": 1, "_auth_user_id": "77"}


@pytest.mark.backends("redis")
def test_control_the_same_interleaving_breaks_djangos_cache_engine(backend):
    """The interleaving above is a real test: a read-then-write engine fails it."""
    from django.contrib.sessions.backends.cache import SessionStore as CacheSessionStore
    from django.core.cache import caches
    from django.test import override_settings

    url = backend.config["URL"].rsplit("/", 1)[0] + "/1"
    cache = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}
    with override_settings(CACHES={"default": cache}):
        caches["default"].clear()
        s = CacheSessionStore()
        s.update({"x": 0, "y": 0})
        s.save()
        request_a, request_b = CacheSessionStore(s.session_key), CacheSessionStore(s.session_key)
        request_a._get_session()
        request_b._get_session()
        request_a["x"] = "from A"
        request_b["y"] = "from B"
        request_a.save()
        request_b.save()
        assert dict(CacheSessionStore(s.session_key).items()) == {"x": 0, "y": "from B"}


def test_user_id_set_in_a_session_deleted_meanwhile_is_not_brought_back(backend):
    key = stored({"cart": [1]})
    request = SessionStore(key)
    request._get_session()
    SessionStore(key).flush()  # another request logged out
    request["_auth_user_id"] = "78"
    with pytest.raises(UpdateError):
        request.save()
    assert backend.keys() == []


def test_saving_a_stale_key_that_was_never_loaded_starts_afresh(backend):
    key = stored({"a": 1})
    SessionStore(key).delete()
    s = SessionStore(key)
    s.save()  # Django's engines create a new session here
    assert s.session_key not in (None, key)
    assert s.exists(s.session_key)
