"""The SessionBase contract, sync and async, on every backend."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal
from importlib import import_module
from typing import Any

import pytest
from django.conf import settings
from django.contrib.sessions.backends.base import CreateError
from django.test import override_settings
from django.utils import timezone
from django.utils.module_loading import import_string

from django_charon_sessions.engine import SessionStore
from django_charon_sessions.keyspace import TAG_LENGTH, Keys, is_valid_session_key

VALUES = {
    "text": "héllo wörld ✓",
    "int": 7,
    "float": 1.5,
    "bool": True,
    "none": None,
    "list": [1, "two", [3]],
    "dict": {"nested": {"deep": [1, 2]}},
}


def saved(data: dict[str, object] | None = None) -> SessionStore:
    s = SessionStore()
    s.update(data or {"a": 1})
    s.save()
    return s


def ttl_of(backend, session_key: str) -> int:
    return int(backend.admin.pttl(Keys.for_session("charon", session_key).record))


# -- mapping API and persistence ----------------------------------------------


def test_new_session_is_empty_and_keyless(backend):
    s = SessionStore()
    assert s.session_key is None
    assert s.is_empty()
    assert dict(s.items()) == {}
    assert backend.keys() == []


def test_mapping_methods(backend):
    s = SessionStore()
    s["x"] = 1
    assert "x" in s
    assert s["x"] == 1
    assert s.get("y", 5) == 5
    assert s.setdefault("y", 2) == 2
    assert s.setdefault("y", 3) == 2
    s.update({"z": 3})
    assert sorted(s.keys()) == ["x", "y", "z"]
    assert sorted(s.values()) == [1, 2, 3]
    assert s.has_key("z")
    assert s.pop("z") == 3
    assert s.pop("z", "gone") == "gone"
    del s["y"]
    s.save()
    assert dict(SessionStore(s.session_key).items()) == {"x": 1}
    with pytest.raises(KeyError):
        s.pop("nope")


def test_values_roundtrip(backend):
    s = saved(VALUES)
    assert is_valid_session_key(s.session_key)
    assert dict(SessionStore(s.session_key).items()) == VALUES


def test_update_sends_changes_and_deletions(backend):
    s = saved({"a": 1, "b": 2, "c": 3})
    t = SessionStore(s.session_key)
    t["a"] = 10
    del t["b"]
    t.save()
    assert dict(SessionStore(s.session_key).items()) == {"a": 10, "c": 3}


def test_clear_without_load_replaces_everything(backend):
    s = saved({"a": 1, "b": 2})
    t = SessionStore(s.session_key)
    t.clear()  # never loaded: the stored keys are unknown to t
    t["c"] = 3
    t.save()
    assert dict(SessionStore(s.session_key).items()) == {"c": 3}


def test_unknown_key_loads_empty_and_is_not_adopted(backend):
    unknown = SessionStore()._get_new_session_key()
    s = SessionStore(unknown)
    assert dict(s.items()) == {}
    assert s.session_key is None  # never create a session under a client-chosen key
    s["a"] = 1
    s.save()
    assert s.session_key != unknown
    assert not s.exists(unknown)


@pytest.mark.parametrize(
    "cookie", ["", "short", "x" * 51, "0" * 52, "A" * 52, "ü" * 52, "1" * 4000]
)
def test_malformed_keys_are_ignored(backend, cookie):
    s = SessionStore(cookie)
    assert s.session_key is None
    assert dict(s.items()) == {}
    assert not s.exists(cookie)


def test_exists(backend):
    s = saved()
    assert s.exists(s.session_key)
    assert not s.exists(SessionStore()._get_new_session_key())
    assert not s.exists(None)


# -- create, save(must_create), delete, flush, cycle ---------------------------------


def test_create_makes_a_new_key_each_time(backend):
    s = SessionStore()
    s.create()
    first = s.session_key
    s.create()
    assert s.session_key != first
    assert s.exists(first)
    assert s.exists(s.session_key)
    assert s.modified


def test_must_create_never_overwrites(backend):
    s = saved({"a": 1})
    intruder = SessionStore(s.session_key)
    intruder._session_cache = {"a": "overwritten"}
    with pytest.raises(CreateError):
        intruder.save(must_create=True)
    assert dict(SessionStore(s.session_key).items()) == {"a": 1}


def test_delete_own_and_other(backend):
    s, other = saved(), saved()
    s.delete()
    assert not s.exists(s.session_key)
    s.delete(other.session_key)
    assert not s.exists(other.session_key)
    assert backend.keys() == []
    s.delete("not-a-valid-key")  # ignored, no error


def test_flush(backend):
    s = saved({"a": 1})
    old = s.session_key
    s.flush()
    assert s.session_key is None
    assert dict(s.items()) == {}
    assert not s.exists(old)


def test_cycle_key_anonymous(backend):
    s = saved({"a": 1, "b": [2]})
    old = s.session_key
    s.cycle_key()
    assert s.session_key != old
    assert is_valid_session_key(s.session_key)
    assert not s.exists(old)
    assert dict(s.items()) == {"a": 1, "b": [2]}
    s.save()
    assert dict(SessionStore(s.session_key).items()) == {"a": 1, "b": [2]}


def test_cycle_key_authenticated_stays_in_users_slot(backend):
    s = saved({"_auth_user_id": "7", "a": 1})
    old = s.session_key
    s.cycle_key()
    assert s.session_key[:TAG_LENGTH] == old[:TAG_LENGTH]
    assert s.exists(s.session_key)
    assert not s.exists(old)
    assert dict(SessionStore(s.session_key).items()) == {"_auth_user_id": "7", "a": 1}
    index = Keys.for_session("charon", s.session_key).index
    assert backend.admin.zrange(index, 0, -1) == [
        Keys.for_session("charon", s.session_key).member.encode()
    ]


def test_cycle_key_without_a_stored_session(backend):
    s = SessionStore()
    s["a"] = 1
    s.cycle_key()
    s.save()
    assert dict(SessionStore(s.session_key).items()) == {"a": 1}


# -- expiry ----------------------------------------------------------------------


def test_default_expiry_is_the_cookie_age(backend, settings):
    s = saved()
    assert s.get_expiry_age() == settings.SESSION_COOKIE_AGE
    assert abs(ttl_of(backend, s.session_key) - settings.SESSION_COOKIE_AGE * 1000) < 5000


@pytest.mark.parametrize(
    ("value", "expected"),
    [(600, 600), (timedelta(minutes=20), 1200), ("dt", 1800)],
)
def test_set_expiry_sets_the_redis_ttl(backend, value, expected):
    if value == "dt":
        value = timezone.now() + timedelta(seconds=1800)
    s = SessionStore()
    s.set_expiry(value)
    s.save()
    assert abs(ttl_of(backend, s.session_key) - expected * 1000) < 5000
    assert abs(SessionStore(s.session_key).get_expiry_age() - expected) <= 5


def test_expiry_zero_means_browser_close(backend, settings):
    s = SessionStore()
    s.set_expiry(0)
    s.save()
    loaded = SessionStore(s.session_key)
    assert loaded.get_expire_at_browser_close()
    assert abs(ttl_of(backend, s.session_key) - settings.SESSION_COOKIE_AGE * 1000) < 5000
    loaded.set_expiry(None)
    assert loaded.get_expire_at_browser_close() is False


@override_settings(SESSION_EXPIRE_AT_BROWSER_CLOSE=True)
def test_expire_at_browser_close_setting(backend):
    s = saved()
    assert SessionStore(s.session_key).get_expire_at_browser_close()


@pytest.mark.parametrize("value", [-5, "past"])
def test_negative_or_past_expiry_deletes(backend, value):
    s = saved({"a": 1})
    t = SessionStore(s.session_key)
    t.set_expiry(timezone.now() - timedelta(seconds=10) if value == "past" else value)
    t.save()
    assert not t.exists(s.session_key)
    assert backend.keys() == []


def test_idle_expiry_is_enforced_by_the_server(backend):
    s = SessionStore()
    s["_auth_user_id"] = "9"
    s.set_expiry(1)
    s.save()
    time.sleep(1.3)
    assert dict(SessionStore(s.session_key).items()) == {}
    assert backend.keys() == []  # session, index and metadata are all gone


def test_unchanged_save_only_moves_the_expiry(backend):
    s = saved({"a": 1})
    keys = Keys.for_session("charon", s.session_key)
    before = backend.admin.get(keys.record)
    backend.admin.pexpire(keys.record, 60_000)
    t = SessionStore(s.session_key)
    t._get_session()  # the request reads its session
    t.save()
    assert backend.admin.get(keys.record) == before
    assert backend.admin.pttl(keys.record) > 60_000


def test_absolute_lifetime(backend):
    with backend.settings(ABSOLUTE_MAX_AGE=1):
        s = SessionStore()
        s.set_expiry(3600)
        s["_auth_user_id"] = "3"
        s.save()
        assert ttl_of(backend, s.session_key) <= 1000
        time.sleep(1.2)
        assert dict(SessionStore(s.session_key).items()) == {}


def test_clear_expired_prunes_indexes(backend):
    a = SessionStore()
    a.update({"_auth_user_id": "5"})
    a.set_expiry(1)
    a.save()
    b = saved({"_auth_user_id": "5"})
    index = Keys.for_session("charon", b.session_key).index
    assert backend.admin.zcard(index) == 2
    time.sleep(1.2)
    SessionStore.clear_expired()
    assert backend.admin.zcard(index) == 1


# -- async twins -----------------------------------------------------------------


async def test_async_roundtrip(backend):
    s = SessionStore()
    await s.aset("a", 1)
    await s.aupdate(VALUES)
    await s.asave()
    loaded = SessionStore(s.session_key)
    assert dict(await loaded.aitems()) == {"a": 1, **VALUES}
    assert await loaded.aexists(s.session_key)
    assert await loaded.apop("a") == 1
    await loaded.asave()
    assert "a" not in dict(await SessionStore(s.session_key).aitems())


async def test_async_create_delete_flush(backend):
    s = SessionStore()
    await s.acreate()
    key = s.session_key
    assert await s.aexists(key)
    await s.adelete()
    assert not await s.aexists(key)
    t = SessionStore()
    await t.aset("a", 1)
    await t.asave()
    old = t.session_key
    await t.aflush()
    assert t.session_key is None
    assert not await t.aexists(old)


async def test_async_must_create_never_overwrites(backend):
    s = SessionStore()
    await s.aset("a", 1)
    await s.asave()
    intruder = SessionStore(s.session_key)
    intruder._session_cache = {"a": "x"}
    with pytest.raises(CreateError):
        await intruder.asave(must_create=True)
    assert await SessionStore(s.session_key).aget("a") == 1


async def test_async_cycle_key(backend):
    s = SessionStore()
    await s.aupdate({"_auth_user_id": "8", "b": 2})
    await s.asave()
    old = s.session_key
    await s.acycle_key()
    assert not await s.aexists(old)
    assert await s.aexists(s.session_key)
    anon = SessionStore()
    await anon.aset("c", 3)
    await anon.asave()
    old_anon = anon.session_key
    await anon.acycle_key()
    await anon.asave()
    assert not await anon.aexists(old_anon)
    assert dict(await SessionStore(anon.session_key).aitems()) == {"c": 3}


async def test_async_expiry(backend):
    s = SessionStore()
    await s.aset_expiry(300)
    await s.asave()
    assert abs(ttl_of(backend, s.session_key) - 300_000) < 5000
    assert abs(await SessionStore(s.session_key).aget_expiry_age() - 300) <= 5
    await s.aset_expiry(-1)
    await s.asave()
    assert not await s.aexists(s.session_key)


async def test_async_clear_expired(backend):
    a = SessionStore()
    await a.aupdate({"_auth_user_id": "6"})
    await a.aset_expiry(1)
    await a.asave()
    b = SessionStore()
    await b.aupdate({"_auth_user_id": "6"})
    await b.asave()
    index = Keys.for_session("charon", b.session_key).index
    time.sleep(1.2)
    await SessionStore.aclear_expired()
    assert backend.admin.zcard(index) == 1


def test_last_seen_is_updated_by_load_at_most_once_per_interval(backend):
    with backend.settings(LAST_SEEN_INTERVAL=1):
        s = saved({"_auth_user_id": "4"})
        keys = Keys.for_session("charon", s.session_key)

        def last_seen() -> int:
            return int(backend.admin.hget(keys.meta, keys.member)[:10])

        first = last_seen()
        SessionStore(s.session_key).load()
        assert last_seen() == first  # within the interval: no write
        time.sleep(1.1)
        SessionStore(s.session_key).load()
        assert last_seen() >= first + 1
    with backend.settings(LAST_SEEN_INTERVAL=0):
        before = last_seen()
        time.sleep(1.1)
        SessionStore(s.session_key).load()
        assert last_seen() == before


# -- what Django's JSON engines store is stored here too (issue 12) -----------------------


class Unserializable:
    pass


def _circular() -> dict[str, object]:
    loop: list[object] = []
    loop.append(loop)
    return {"loop": loop}


#: Data SESSION_SERIALIZER (JSON) accepts, some of which it changes on the way.
ACCEPTED: dict[str, dict[Any, Any]] = {
    "int dict keys become strings": {"m": {1: "a", 20: "b"}},
    "an int key at the top": {1: "x", "y": 2},
    "an int and a str key that collide": {"m": {1: "int", "1": "str"}},
    "float, bool and None keys": {"m": {1.5: 1, True: 2, None: 3}},
    "lone surrogates in keys": {"\ud800": 1, "m": {"\udfff": "v"}},
    "lone surrogates in values": {"s": "a\ud83db", "l": ["\udc00"]},
    "non-ASCII": {"ü": "✓ 😀", "\u2028": "\x00\x1f"},
    "tuples become lists": {"t": (1, (2, 3))},
    "NaN, infinities, negative zero": {"f": [float("nan"), float("inf"), -float("inf"), -0.0]},
    "big and small numbers": {"n": 2**200, "m": -(2**70), "e": 1e-300, "x": 1.7976931348623157e308},
    "1, True and 1.0 stay apart": {"a": 1, "b": True, "c": 1.0, "d": 0, "e": False},
    "empty containers and strings": {"": "", "l": [], "d": {}},
    "a user id stored as a number": {"_auth_user_id": 7, "_auth_user_backend": "x.Backend"},
}

#: Data it rejects, with the error Django's db engine raises for it.
REJECTED: dict[str, Any] = {
    "datetime": lambda: {"when": timezone.now()},
    "set": lambda: {"s": {1, 2}},
    "bytes": lambda: {"b": b"raw"},
    "Decimal": lambda: {"d": Decimal("1.5")},
    "object": lambda: {"o": Unserializable()},
    "tuple key": lambda: {"m": {(1, 2): "x"}},
    "circular": _circular,
}


def typed(value: Any) -> str:
    """Return a comparison form that keeps 1, True and 1.0 (and key order) apart."""
    return repr(value)


def django_roundtrip(engine: str, data: dict[Any, Any]) -> dict[str, Any]:
    """Save ``data`` with one of Django's engines and load it in a new store."""
    store_class = import_module(engine).SessionStore
    store = store_class()
    store.update(data)
    store.save()
    return dict(store_class(store.session_key).items())


def charon_saved(data: dict[Any, Any]) -> str:
    """Save ``data`` in a new session of this engine; return its key."""
    store = SessionStore()
    store.update(data)
    store.save()
    assert store.session_key is not None
    return store.session_key


def charon_roundtrip(data: dict[Any, Any]) -> dict[str, Any]:
    return dict(SessionStore(charon_saved(data)).items())


def through_session_serializer(data: dict[Any, Any]) -> dict[str, Any]:
    serializer = import_string(settings.SESSION_SERIALIZER)()
    return serializer.loads(serializer.dumps(data))  # type: ignore[no-any-return]


PARITY_CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "parity": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "parity"},
}


@pytest.mark.django_db
@pytest.mark.backends
@pytest.mark.parametrize("name", list(ACCEPTED))
def test_stores_what_djangos_json_engines_store(backend, name):
    data = ACCEPTED[name]
    ours = charon_roundtrip(data)
    # Django's db engine serializes with SESSION_SERIALIZER, as this one does.
    assert typed(ours) == typed(django_roundtrip("django.contrib.sessions.backends.db", data))
    # Its cache engine leaves serializing to the cache (locmem pickles), so
    # its round trip is compared after the one pass through SESSION_SERIALIZER
    # that every JSON engine makes.
    with override_settings(CACHES=PARITY_CACHES, SESSION_CACHE_ALIAS="parity"):
        cached = django_roundtrip("django.contrib.sessions.backends.cache", data)
    assert typed(ours) == typed(through_session_serializer(cached))
    assert typed(ours) == typed(through_session_serializer(data))


def error_of(save: Any) -> tuple[type[BaseException], str]:
    with pytest.raises(Exception) as info:  # noqa: PT011 - the type is what is compared
        save()
    return type(info.value), str(info.value)


@pytest.mark.django_db
@pytest.mark.backends
@pytest.mark.parametrize("name", list(REJECTED))
def test_rejects_what_djangos_json_engines_reject_the_same_way(backend, name):
    from django.contrib.sessions.backends.db import SessionStore as DbStore

    def save_new(store_class: Any) -> Any:
        store = store_class()
        store.update(REJECTED[name]())
        return store.save

    expected = error_of(save_new(DbStore))
    assert error_of(save_new(SessionStore)) == expected
    assert [k for k in backend.keys() if b"}r" in k] == []  # noqa: SIM118 - nothing written
    # An update of a stored session fails the same way and leaves it as it was.
    stored_key = charon_saved({"keep": 1})
    store = SessionStore(stored_key)
    store.update(REJECTED[name]())
    assert error_of(store.save) == expected
    assert dict(SessionStore(stored_key).items()) == {"keep": 1}
