"""Bad input (issue 7, point 3): cookies, stored values, user ids.

tests/test_tamper.py covers records changed, spliced, replayed or copied from
another session or KEY_PREFIX, and the SECRET_KEY_FALLBACKS rotation; this
file covers the rest: cookies of every wrong shape through real requests,
records that are correctly sealed but not the session's data, records cut
short or written by hand without a header, a hash where the record should
be, user ids with separators, braces and unicode, and all of it thrown at
the engine while the load of tests/load.py runs.
"""

from __future__ import annotations

import inspect
import logging
import threading
from io import StringIO
from typing import TYPE_CHECKING, Any

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.test import Client, override_settings

from django_charon_sessions import api
from django_charon_sessions.codec import MAC_LENGTH, Codec
from django_charon_sessions.engine import SessionStore
from django_charon_sessions.exceptions import RedisUnavailable
from django_charon_sessions.keyspace import (
    KEY_LENGTH,
    TAG_LENGTH,
    Keys,
    is_valid_session_key,
    member_of,
    user_tag,
    user_tags,
)
from django_charon_sessions.state import context
from tests.load import USERS, FigureLog, Figures, Load

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

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
        "shaped like a stored hash key": keys.record,
        "shaped like a member (public id)": keys.member,
        "shaped like a user's tag + member": keys.record.split(":", 1)[1],
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
    for value in (keys.record, keys.member, s.session_key[:-1]):
        assert not SessionStore().exists(value)
        assert dict(SessionStore(value).items()) == {}
    assert dict(SessionStore(s.session_key).items()) == {"secret": "x"}


def header(created: int, user: str = "") -> bytes:
    """The header of a new record as the Lua library writes it (last seen = created)."""
    uid = user.encode()
    return b"%010d,1,%d,%d:%s" % (created, created, len(uid), uid)


def put(admin: Any, keys: Keys, value: bytes) -> None:
    """Overwrite a record as a Redis writer would, keeping its expiry."""
    assert admin.set(keys.record, value, keepttl=True)


def assert_rejected(backend: Any, caplog: Any, session_key: str, *secrets: str) -> None:
    """No session, one log line without the key or contents, the record left as it was."""
    keys = Keys.for_session("charon", session_key)
    before = backend.admin.get(keys.record)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=SECURITY):
        loaded = SessionStore(session_key)
        assert dict(loaded.items()) == {}
    assert loaded.session_key is None
    assert [r.name for r in caplog.records if r.name == SECURITY] == [SECURITY]
    for secret in (session_key, session_key[TAG_LENGTH:], keys.member, *secrets):
        assert secret not in caplog.text
    assert backend.admin.get(keys.record) == before
    assert backend.admin.ttl(keys.record) > 0


SIGNED_GARBAGE = {
    "not JSON": ("", b"{not json"),
    "not UTF-8": ("", b'{"a":"\xff"}'),
    "JSON, not a dict": ("", b'["do not log me"]'),
    "JSON null": ("", b"null"),
    "empty body": ("", b""),
    # Sealed as anonymous, but the data names a user: the header must agree.
    "user in the data only": ("", b'{"_auth_user_id":"42","a":"do not log me"}'),
    "user in the header only": ("42", b'{"a":"do not log me"}'),
    "another user in the data": ("42", b'{"_auth_user_id":"43","a":"do not log me"}'),
}


@pytest.mark.parametrize("name", list(SIGNED_GARBAGE))
def test_correctly_signed_garbage_reads_as_empty_and_is_logged(backend, caplog, name):
    """Correctly sealed for this session, yet not a session's data."""
    user, body = SIGNED_GARBAGE[name]
    s = stored({"_auth_user_id": user} if user else {"a": 1})
    keys = Keys.for_session("charon", s.session_key)
    created = int(backend.admin.get(keys.record).split(b",")[2])
    codec = context().codec
    # Built this way, the session's own data loads: only the body is at fault.
    sound = dict(s.items())
    put(
        backend.admin,
        keys,
        header(created, user) + codec.seal(keys.member, user or None, created, codec.dumps(sound)),
    )
    assert dict(SessionStore(s.session_key).items()) == sound
    sealed = codec.seal(keys.member, user or None, created, body)
    put(backend.admin, keys, header(created, user) + sealed)
    assert_rejected(backend, caplog, s.session_key, "do not log me")


def test_string_without_a_header_written_by_hand(backend, caplog):
    """The session's data written as a plain string, with no header or MAC."""
    s = stored({"a": 1})
    keys = Keys.for_session("charon", s.session_key)
    put(backend.admin, keys, b'{"a":1,"is_admin":true}')
    assert_rejected(backend, caplog, s.session_key)
    # A request gets a fresh session; the hand-written value stays.
    client = Client()
    status, data, new = send(client, s.session_key)
    assert (status, data) == (200, {})
    assert new is not None and new != s.session_key
    assert backend.admin.get(keys.record) == b'{"a":1,"is_admin":true}'


def test_hash_at_the_record_key(backend):
    """A hash (a wrong type: the 0.1 layout) where the record should be reads as
    no session, and a request with that cookie gets a fresh one."""
    s = stored({"a": 1})
    keys = Keys.for_session("charon", s.session_key)
    backend.admin.delete(keys.record)
    backend.admin.hset(keys.record, mapping={b"a": b"1", b"\xffc": b"0"})
    assert dict(SessionStore(s.session_key).items()) == {}
    status, data, new = send(Client(), s.session_key)
    assert (status, data) == (200, {})
    assert new is not None and new != s.session_key
    assert backend.admin.type(keys.record) in (b"hash", "hash")  # left as it was


def truncations(value: bytes, user: bytes) -> dict[str, bytes]:
    """The record cut at each point of its layout, and a few other mistakes."""
    head = value.index(b":") + 1
    mac = head + len(user)
    body = mac + MAC_LENGTH
    flipped = bytes([value[body - 1] ^ 1])
    return {
        "empty": b"",
        "a NUL byte": b"\x00",
        "inside the last-seen time": value[:5],
        "inside the header": value[: head - 3],
        "header only": value[:head],
        "inside the user id": value[: head + 1],
        "inside the MAC": value[: mac + 5],
        "MAC without a body": value[:body],
        "body short by one byte": value[:-1],
        "a bit of the MAC flipped": value[: body - 1] + flipped + value[body:],
        "no header": value[head + len(user) :],
        "a user id longer than the record": value.replace(b",7:", b",9999:", 1),
        "100 kB unsigned": b"x" * 100_000,
    }


TRUNCATIONS = list(truncations(b"0,0,0,7:alice-7" + b"m" * MAC_LENGTH + b"{}", b"alice-7"))


@pytest.mark.parametrize("name", TRUNCATIONS)
def test_stored_value_truncated_unsigned_or_without_header(backend, caplog, name):
    s = stored({"_auth_user_id": "alice-7", "a": "do not log me"})
    keys = Keys.for_session("charon", s.session_key)
    value = backend.admin.get(keys.record)
    assert value.split(b",")[3].startswith(b"7:alice-7")
    damaged = truncations(value, b"alice-7")[name]
    assert damaged != value
    put(backend.admin, keys, damaged)
    assert_rejected(backend, caplog, s.session_key, "do not log me")


def test_last_seen_shorter_than_ten_digits(backend, caplog):
    """Redis reads any number of digits as "last seen" and, finding it long past,
    rewrites the first 10 bytes in place before Python rejects the record. The
    session still reads as nothing; what follows the header is left as it was."""
    s = stored({"_auth_user_id": "alice-7", "a": "do not log me"})
    keys = Keys.for_session("charon", s.session_key)
    damaged = backend.admin.get(keys.record)[1:]
    put(backend.admin, keys, damaged)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=SECURITY):
        loaded = SessionStore(s.session_key)
        assert dict(loaded.items()) == {}
    assert loaded.session_key is None
    assert [r.name for r in caplog.records] == [SECURITY]
    assert s.session_key not in caplog.text
    assert "do not log me" not in caplog.text
    after = backend.admin.get(keys.record)
    assert after is not None
    assert after[10:] == damaged[10:]


def test_record_copied_from_another_session_of_the_same_user(backend, caplog):
    """Both live in the user's index and slot: only the MAC tells them apart."""
    mine = stored({"_auth_user_id": "42", "role": "user"})
    other = stored({"_auth_user_id": "42", "role": "admin"})
    a = Keys.for_session("charon", mine.session_key)
    b = Keys.for_session("charon", other.session_key)
    assert (a.index, a.record != b.record) == (b.index, True)
    put(backend.admin, a, backend.admin.get(b.record))
    assert_rejected(backend, caplog, mine.session_key, "admin")
    assert dict(SessionStore(other.session_key).items())["role"] == "admin"


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
        assert all(k[:TAG_LENGTH] == user_tag(uid) for k in sessions[uid])
        if backend.name == "cluster":
            k = Keys.for_session("charon", sessions[uid][0])
            assert len({backend.admin.keyslot(x) for x in (k.record, k.index, k.meta)}) == 1
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
                # Damaged records left for inspection would fail the load's final check.
                backend.admin.delete(keys.record)

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
    put(admin, keys, admin.get(Keys.for_session("charon", other.session_key).record))


def _sealed(admin: Any, keys: Keys, codec: Codec, body: bytes) -> None:
    created = int(admin.get(keys.record).split(b",")[2])
    put(admin, keys, header(created, "42") + codec.seal(keys.member, "42", created, body))


def _other_prefix(admin: Any, keys: Keys) -> None:
    # Sealed with this SECRET_KEY for a site whose KEY_PREFIX is "other".
    other = Codec(context().codec.serializer, "other")
    _sealed(admin, keys, other, b'{"_auth_user_id":"42","a":1}')


def _without_user(admin: Any, keys: Keys) -> None:
    value = admin.get(keys.record)
    stripped = value.replace(b",2:42", b",0:", 1)
    assert stripped != value
    put(admin, keys, stripped)
    admin.zrem(keys.index, keys.member)


STORED = {
    "truncated": lambda admin, keys: put(admin, keys, admin.get(keys.record)[:-1]),
    "from another session": _copy_from_other_session,
    "from another KEY_PREFIX": _other_prefix,
    "signed, not JSON": lambda admin, keys: _sealed(admin, keys, context().codec, b"{"),
    "user removed, out of the index": _without_user,
    "no header": lambda admin, keys: put(admin, keys, b'{"_auth_user_id":"42","a":1}'),
}


# -- malformed metadata in a user's listing (issue 12) ------------------------------------

MALFORMED_META = {
    "facts not JSON": b"1700000000|1700000000|{not json",
    "facts not an object": b'1700000000|1700000000|["198.51.100.99"]',
    "times not numbers": b'abcdefghij|klmnopqrst|{"ip":"198.51.100.99"}',
    "times out of range": b"9999999999|-999999999|{not json",
    "cut short": b"{not json",
    "not UTF-8": b"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6|\xff|{\xff",
}


def corrupt_meta(backend: Any, key: str, value: bytes) -> None:
    """Overwrite the listing metadata of the session ``key`` with ``value``."""
    admin_keys = Keys.for_session(context().prefix, key)
    assert backend.admin.hexists(admin_keys.meta, admin_keys.member)
    backend.admin.hset(admin_keys.meta, admin_keys.member, value)


def assert_logged_without_contents(caplog: Any, key: str) -> None:
    lines = [r.getMessage() for r in caplog.records if r.name == "django_charon_sessions"]
    assert any(member_of(key)[:8] in line and "malformed metadata" in line for line in lines)
    for line in lines:
        assert key not in line and member_of(key) not in line
        assert "not json" not in line and "198.51.100.99" not in line


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(MALFORMED_META))
def test_malformed_metadata_lists_the_session_as_unknown(backend, caplog, django_user_model, name):
    from tests.devices import CHROME_MAC, PASSWORD, device, key_of

    ada = django_user_model.objects.create_user("ada", password=PASSWORD)
    good, bad = device(ada), device(ada, CHROME_MAC)
    corrupt_meta(backend, key_of(bad), MALFORMED_META[name])
    caplog.set_level(logging.WARNING, logger="django_charon_sessions")
    for listed in (api.list_sessions(ada), async_to_sync(api.alist_sessions)(ada)):
        by_id = {s.id: s for s in listed}
        assert set(by_id) == {member_of(key_of(good)), member_of(key_of(bad))}
        shown = by_id[member_of(key_of(bad))]
        # What can be read is shown: facts that parse survive broken times.
        ip = "198.51.100.99" if name == "times not numbers" else ""
        assert (shown.ip, shown.browser, shown.os) == (ip, "Unknown", "Unknown")
        assert by_id[member_of(key_of(good))].ip == "192.0.2.10"  # the rest is intact
    assert_logged_without_contents(caplog, key_of(bad))


@pytest.mark.django_db
@pytest.mark.backends("fake", "redis")
def test_malformed_metadata_pages_still_answer(backend, caplog, django_user_model):
    from django.urls import reverse

    from tests.devices import CHROME_MAC, PASSWORD, device, key_of

    ada = django_user_model.objects.create_user("ada", password=PASSWORD)
    boss = django_user_model.objects.create_superuser("boss", "boss@example.com", PASSWORD)
    laptop, phone = device(ada), device(ada, CHROME_MAC)
    corrupt_meta(backend, key_of(phone), MALFORMED_META["facts not JSON"])
    caplog.set_level(logging.WARNING, logger="django_charon_sessions")
    opts = django_user_model._meta
    admin_page = device(boss).get(
        reverse(f"admin:{opts.app_label}_{opts.model_name}_sessions", args=[ada.pk])
    )
    own_page = laptop.get("/accounts/sessions/")
    for page in (admin_page, own_page):
        assert page.status_code == 200
        assert member_of(key_of(phone)) in page.text  # listed, and can be revoked
        assert "not json" not in page.text
    assert "192.0.2.10" in admin_page.text
    assert "This device" in own_page.text
    assert_logged_without_contents(caplog, key_of(phone))


# -- no exception message holds a session key (issue 12) ---------------------------------


def raised(action: Callable[[], object]) -> tuple[type[BaseException] | None, list[str]]:
    """Run ``action``; return what it raised and the texts of it and its causes."""
    try:
        result = action()
        if inspect.isawaitable(result):

            async def wait() -> object:
                return await result

            async_to_sync(wait)()
    except Exception as exc:
        texts: list[str] = []
        seen: BaseException | None = exc
        while seen is not None and len(texts) < 20:
            texts += [str(seen), repr(seen), repr(seen.args)]
            seen = seen.__cause__ or seen.__context__
        return type(exc), texts
    return None, []


def imported_key(user_id: str | None = None) -> str:
    """Return the key of a session made by Django's db engine and imported."""
    from django.contrib.sessions.backends.db import SessionStore as DbStore
    from django.core.management import call_command

    old = DbStore()
    old["x"] = 0
    if user_id is not None:
        old["_auth_user_id"] = user_id
    old.create()
    call_command("sessions_import", "--from", "db", "--restart", stdout=StringIO())
    assert old.session_key is not None
    return old.session_key


def key_paths(key: str) -> dict[str, Callable[[], object]]:
    """Every public operation of a store, sync and async, driven with ``key``."""

    def must_create() -> None:
        s = SessionStore(key)
        s["x"] = 1
        s.save(must_create=True)
        assert s.session_key != key  # a key of this engine, never a 32-character one

    def amust_create() -> Any:
        s = SessionStore(key)
        s["x"] = 1
        return s.asave(must_create=True)

    def save() -> None:
        s = SessionStore(key)
        s["x"] = 2
        s.save()

    return {
        "save(must_create=True)": must_create,
        "asave(must_create=True)": amust_create,
        "load": lambda: SessionStore(key).load(),
        "aload": lambda: SessionStore(key).aload(),
        "save": save,
        "exists": lambda: SessionStore().exists(key),
        "aexists": lambda: SessionStore().aexists(key),
        "delete(other)": lambda: SessionStore().delete(key),
        "adelete(other)": lambda: SessionStore().adelete(key),
        "cycle_key": lambda: SessionStore(key).cycle_key(),
        "acycle_key": lambda: SessionStore(key).acycle_key(),
        "flush": lambda: SessionStore(key).flush(),
    }


def assert_key_in_no_message(key: str, texts: list[str], caplog: Any) -> None:
    for text in texts + [r.getMessage() for r in caplog.records]:
        assert key not in text
        assert key.upper() not in text.upper()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "kind",
    ["legacy, unknown", "legacy, imported", "legacy, imported, signed in", "engine, unknown"],
)
def test_no_exception_message_holds_a_session_key(backend, caplog, kind):
    caplog.set_level(logging.DEBUG)
    for name in key_paths("x" * 32):
        if kind == "legacy, unknown":
            key = "k" * 32  # the shape of Django's own keys, never imported
        elif kind.startswith("legacy, imported"):
            key = imported_key("7" if kind.endswith("signed in") else None)
        else:
            key = "a" * TAG_LENGTH + "0" * (KEY_LENGTH - TAG_LENGTH)
        error, texts = raised(key_paths(key)[name])  # each path on a fresh session
        assert error is None, (name, error)  # every path copes with the key
        assert_key_in_no_message(key, texts, caplog)


@pytest.mark.django_db
def test_no_exception_message_holds_a_session_key_on_known_errors(
    backend, caplog, django_user_model
):
    from django.contrib.sessions.backends.base import CreateError, UpdateError
    from django.contrib.sessions.exceptions import SessionInterrupted
    from django.core.management import call_command
    from django.core.management.base import CommandError

    caplog.set_level(logging.DEBUG)
    ada = django_user_model.objects.create_user("ada")
    signed_in = stored({"_auth_user_id": str(ada.pk)})
    key = signed_in.session_key
    assert key is not None
    in_flight, cycling = SessionStore(key), SessionStore(key)
    in_flight._get_session()
    cycling._get_session()
    api.end_sessions(ada)  # "log out everywhere" while both requests run
    in_flight["x"] = 1
    expected = {
        "update of an ended session": (UpdateError, in_flight.save),
        "cycle of an ended session": (SessionInterrupted, cycling.cycle_key),
        "create over a live key": (
            CreateError,
            lambda: stored({"b": 2}).save(must_create=True),
        ),
        "--keep-session given a session key": (
            CommandError,
            lambda: call_command(
                "sessions_kill_user", "ada", "--keep-session", key, stdout=StringIO()
            ),
        ),
    }
    for name, (error_type, action) in expected.items():
        error, texts = raised(action)
        assert error is not None and issubclass(error, error_type), name
        assert_key_in_no_message(key, texts, caplog)
    live = stored({"c": 3})
    assert live.session_key is not None
    _, texts = raised(lambda: live.save(must_create=True))
    assert_key_in_no_message(live.session_key, texts, caplog)


def test_no_exception_message_holds_a_session_key_when_redis_is_down(caplog):
    from tests.harness import free_port

    caplog.set_level(logging.DEBUG)
    config = {
        "URL": f"redis://127.0.0.1:{free_port()}/0",
        "SOCKET_TIMEOUT": 0.3,
        "SOCKET_CONNECT_TIMEOUT": 0.3,
    }
    with override_settings(CHARON_SESSIONS=config):
        for key in ("k" * 32, "a" * TAG_LENGTH + "0" * (KEY_LENGTH - TAG_LENGTH)):
            for name, action in key_paths(key).items():
                error, texts = raised(action)
                if name not in {"save(must_create=True)", "asave(must_create=True)"}:
                    assert error is RedisUnavailable, (name, error)
                assert_key_in_no_message(key, texts, caplog)


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(MALFORMED_META))
def test_malformed_metadata_still_counts_in_the_stats(backend, django_user_model, name):
    from datetime import timedelta

    from tests.devices import CHROME_MAC, PASSWORD, device, key_of

    ada = django_user_model.objects.create_user("ada", password=PASSWORD)
    device(ada)
    bad = device(ada, CHROME_MAC)
    corrupt_meta(backend, key_of(bad), MALFORMED_META[name])
    stats = api.session_stats(active_within=timedelta(hours=1))
    assert (stats.sessions, stats.users) == (2, 1)
    # Only the readable entry counts as active, unless a well-formed time is in the future.
    expected = 2 if name == "times out of range" else 1
    assert stats.active == expected
