"""Bad input (issue 7, point 3): cookies, stored values, user ids.

tests/test_tamper.py covers a tampered, truncated, copied or foreign-prefix
stored value and the SECRET_KEY_FALLBACKS rotation; this file covers the rest:
cookies of every wrong shape through real requests, values that are correctly
signed but not the session's data, hashes written by hand without the
engine's own fields, user ids with separators, braces and unicode, and all
of it thrown at the engine while the load of tests/load.py runs.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

import pytest
from django.conf import settings
from django.test import Client, override_settings

from django_charon_sessions import api
from django_charon_sessions.codec import Codec
from django_charon_sessions.engine import SessionStore, context
from django_charon_sessions.keyspace import (
    KEY_LENGTH,
    Keys,
    is_valid_session_key,
    member_of,
    user_tag,
    user_tags,
)
from tests.load import USERS, FigureLog, Figures, Load

if TYPE_CHECKING:
    from collections.abc import Iterator

COOKIE = settings.SESSION_COOKIE_NAME
SECURITY = "django.security.SuspiciousSession"


@pytest.fixture(scope="module")
def figures(request, tmp_path_factory) -> Iterator[FigureLog]:
    log = FigureLog(tmp_path_factory.getbasetemp())
    yield log
    log.report(request.config)


def stored(data: dict[str, object]) -> SessionStore:
    s = SessionStore()
    s.update(data)
    s.save()
    return s


def bad_cookies() -> dict[str, str]:
    """Cookie values a client may send, none of them a live session."""
    real = stored({"seed": 1})
    assert real.session_key is not None
    keys = Keys.for_session(context().prefix, real.session_key)
    return {
        "empty": "",
        "huge": "a" * 8000,
        "non-ASCII": "ü" * KEY_LENGTH,
        "wrong format: short": "abc",
        "wrong format: upper case": real.session_key.upper(),
        "wrong format: one char too long": real.session_key + "a",
        "wrong format: quotes and separators": '"a;b=c,d"',
        "shaped like a stored hash key": keys.session,
        "shaped like a member (public id)": keys.member,
        "shaped like a user's tag + member": keys.session.split(":", 1)[1],
        "valid shape, never issued": "a" * 20 + "0" * 32,
        "legacy (32 chars), unknown": "b" * 32,
    }


def send(client: Client, value: str) -> tuple[int, dict[str, Any], str | None]:
    client.cookies[COOKIE] = value
    response = client.get("/session.json")
    data = response.json()["data"] if response.status_code == 200 else {}
    set_response = client.get("/set/k/v/")
    new = client.cookies.get(COOKIE)
    return set_response.status_code, data, new.value if new is not None else None


COOKIE_NAMES = [
    "empty",
    "huge",
    "non-ASCII",
    "wrong format: short",
    "wrong format: upper case",
    "wrong format: one char too long",
    "wrong format: quotes and separators",
    "shaped like a stored hash key",
    "shaped like a member (public id)",
    "shaped like a user's tag + member",
    "valid shape, never issued",
    "legacy (32 chars), unknown",
]


@pytest.mark.parametrize("name", COOKIE_NAMES)
def test_bad_cookie_is_no_session_and_gets_a_fresh_one(backend, name):
    cookies = bad_cookies()
    assert sorted(cookies) == sorted(COOKIE_NAMES)
    value = cookies[name]
    before = set(backend.keys())
    status, data, new = send(Client(), value)
    assert data == {}
    assert status == 200
    fresh = new is not None and new != value and is_valid_session_key(new)
    assert fresh, "the bad cookie was kept or replaced by a malformed one"
    assert dict(SessionStore(new).items()) == {"k": "v"}
    # Nothing was stored under anything derived from the bad value.
    if len(value) >= 16:
        leaked = [k for k in set(backend.keys()) - before if value.encode() in k]
        assert leaked == []


def test_stored_hash_key_as_cookie_does_not_reach_the_session(backend):
    s = stored({"secret": "x"})
    keys = Keys.for_session("charon", s.session_key)
    for value in (keys.session, keys.member, s.session_key[:-1]):
        assert not SessionStore().exists(value)
        assert dict(SessionStore(value).items()) == {}
    assert dict(SessionStore(s.session_key).items()) == {"secret": "x"}


def test_correctly_signed_garbage_reads_as_empty_and_is_logged(backend, caplog):
    s = stored({"a": 1})
    keys = Keys.for_session("charon", s.session_key)
    codec = context().codec
    sealed = codec.seal(keys.member.encode(), b"a", b"{not json")
    backend.admin.hset(keys.session, b"a", sealed)
    with caplog.at_level(logging.WARNING, logger=SECURITY):
        assert dict(SessionStore(s.session_key).items()) == {}
    assert [r for r in caplog.records if r.name == SECURITY]
    assert s.session_key not in caplog.text


@pytest.mark.parametrize("value", [b"", b"\x00", b"0123456789abcde", b"x" * 100_000])
def test_stored_value_too_short_or_unsigned(backend, value):
    s = stored({"a": 1, "b": 2})
    keys = Keys.for_session("charon", s.session_key)
    backend.admin.hset(keys.session, b"b", value)
    assert dict(SessionStore(s.session_key).items()) == {}
    # Left for inspection, not overwritten by the next request's save.
    assert backend.admin.hget(keys.session, b"b") == value


def test_value_moved_to_another_field_is_rejected(backend):
    s = stored({"role": "user", "is_admin": False})
    keys = Keys.for_session("charon", s.session_key)
    role = backend.admin.hget(keys.session, b"role")
    backend.admin.hset(keys.session, b"is_admin", role)
    assert dict(SessionStore(s.session_key).items()) == {}


def test_hash_without_engine_fields_written_by_hand(backend):
    """A hash someone wrote with the right name but no creation time still verifies
    field by field; it is read (the data is genuine) and a save keeps it consistent."""
    s = stored({"a": 1})
    keys = Keys.for_session("charon", s.session_key)
    backend.admin.hdel(keys.session, b"\xffc")
    loaded = SessionStore(s.session_key)
    assert dict(loaded.items()) == {"a": 1}
    loaded["b"] = 2
    loaded.save()
    assert dict(SessionStore(s.session_key).items()) == {"a": 1, "b": 2}


def test_secret_rotation_reaches_the_users_index_too(backend):
    """Fallback secrets: list and end a user's sessions under the old tag."""
    old = "old-secret-key-0123456789-abcdefghijklmnop"
    with override_settings(SECRET_KEY=old):
        s = stored({"_auth_user_id": "a:b", "x": 1})
    new = "new-secret-key-abcdefghijklmnop-0123456789"
    with override_settings(SECRET_KEY=new, SECRET_KEY_FALLBACKS=[old]):
        assert len(user_tags("a:b")) == 2
        assert [x.id for x in api.list_sessions("a:b")] == [member_of(s.session_key)]
        assert api.end_sessions("a:b") == 1
        assert dict(SessionStore(s.session_key).items()) == {}
    with override_settings(SECRET_KEY=new, SECRET_KEY_FALLBACKS=[]):
        assert api.list_sessions("a:b") == []


# -- user ids ----------------------------------------------------------------------

LOOKALIKES = [("a:b", "a"), ("a:b", "b"), ("{x}", "x"), ("}{", "{}"), ("ü-7", "u-7"),
              ("🙂", "?"), ("p|q", "p"), ("sp ace", "sp"), ("*?[", "*"), ("x\\y", "x/y"),
              ("0", "00"), ("1", " 1")]  # fmt: skip


def test_user_ids_with_separators_braces_and_unicode(backend):
    sessions: dict[str, list[str]] = {}
    ids = sorted({u for pair in LOOKALIKES for u in pair} | set(USERS))
    for uid in ids:
        sessions[uid] = [stored({"_auth_user_id": uid, "n": n}).session_key for n in range(2)]
    for uid in ids:
        listed = {x.id for x in api.list_sessions(uid)}
        assert listed == {member_of(k) for k in sessions[uid]}, uid
        assert all(k[:20] == user_tag(uid) for k in sessions[uid])
        if backend.name == "cluster":
            k = Keys.for_session("charon", sessions[uid][0])
            assert len({backend.admin.keyslot(x) for x in (k.session, k.index, k.meta)}) == 1
    for uid, other in LOOKALIKES:
        # Ending one id never touches its look-alike.
        survivors = {member_of(k) for k in sessions[other]}
        assert api.end_sessions(uid) == len(sessions[uid])
        assert api.list_sessions(uid) == []
        assert {x.id for x in api.list_sessions(other)} == survivors
        sessions[uid] = []
    # A public id of one user never ends another's session.
    victim = stored({"_auth_user_id": "{x}"}).session_key
    assert not api.end_session("x", member_of(victim))
    assert api.end_session("{x}", member_of(victim))


@pytest.mark.parametrize("bad", ["", "x" * 27, "A" * 26, "a:b", "../" * 9, "é" * 26])
def test_bad_public_ids_end_nothing(backend, bad):
    s = stored({"_auth_user_id": "5"})
    assert not api.end_session("5", bad)
    assert [x.id for x in api.list_sessions("5")] == [member_of(s.session_key)]


# -- everything at once, under load -------------------------------------------------


@pytest.mark.backends("redis")
def test_bad_input_under_load(backend, figures):
    """Throw every bad cookie and stored value at the engine while the load runs."""
    cookies = bad_cookies()
    rows: dict[str, Figures] = {}
    stop = threading.Event()
    failures: list[str] = []

    def attack() -> None:
        client = Client()
        while not stop.is_set():
            for name, value in cookies.items():
                f = rows.setdefault(name, Figures(f"bad cookie: {name}", backend.name))
                f.ops += 1
                try:
                    status, data, new = send(client, value)
                    if status != 200 or data != {} or new == value:
                        f.errors[f"HTTP {status}"] += 1
                        failures.append(name)
                    else:
                        f.ok += 1
                except Exception as exc:
                    f.errors[type(exc).__name__] += 1
                    failures.append(f"{name}: {exc!r}")
            for name, damage in STORED.items():
                f = rows.setdefault(name, Figures(f"bad stored value: {name}", backend.name))
                f.ops += 1
                s = stored({"a": 1, "_auth_user_id": "42"})
                keys = Keys.for_session("charon", s.session_key)
                damage(backend.admin, keys)
                try:
                    data = dict(SessionStore(s.session_key).items())
                    if data:
                        f.errors["read back"] += 1
                        failures.append(name)
                    else:
                        f.ok += 1
                except Exception as exc:
                    f.errors[type(exc).__name__] += 1
                    failures.append(f"{name}: {exc!r}")
                api.end_session("42", keys.member)

    load_figures = Figures("load beside the bad input", backend.name)
    load = Load(load_figures, threads=2, tasks=2).start()
    attacker = threading.Thread(target=attack)
    attacker.start()
    try:
        load.run_for(2.0)
    finally:
        stop.set()
        attacker.join()
        load.stop()
    load.check(backend.admin)
    load_figures.assert_clean()
    assert load_figures.errors == {}
    assert failures == []
    for f in [load_figures, *rows.values()]:
        f.lost_updates = load_figures.lost_updates
        f.resurrected = load_figures.resurrected
        f.index_inconsistencies = load_figures.index_inconsistencies
        f.seconds = load_figures.seconds
        figures.add(f)
        assert f.ops > 0


def _copy_from_other_session(admin: Any, keys: Keys) -> None:
    other = stored({"a": 2})
    source = Keys.for_session("charon", other.session_key).session
    admin.hset(keys.session, b"a", admin.hget(source, b"a"))


def _other_prefix(admin: Any, keys: Keys) -> None:
    # Signed with this SECRET_KEY for a site whose KEY_PREFIX is "other".
    sealed = Codec(context().codec.serializer, "other").seal(keys.member.encode(), b"a", b"2")
    admin.hset(keys.session, b"a", sealed)


STORED = {
    "truncated": lambda admin, keys: admin.hset(
        keys.session, b"a", admin.hget(keys.session, b"a")[:-1]
    ),
    "from another session": _copy_from_other_session,
    "from another KEY_PREFIX": _other_prefix,
    "signed, not JSON": lambda admin, keys: admin.hset(
        keys.session, b"a", context().codec.seal(keys.member.encode(), b"a", b"{")
    ),
}
