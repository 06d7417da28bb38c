"""Stored data is signed and bound to its session (DESIGN invariant 4)."""

from __future__ import annotations

import logging

import pytest
from django.conf import settings
from django.test import Client, override_settings

from django_charon_sessions.engine import SessionStore
from django_charon_sessions.keyspace import TAG_LENGTH, Keys

SECRET_LOGGER = "django.security.SuspiciousSession"


def stored(data: dict[str, object]) -> SessionStore:
    s = SessionStore()
    s.update(data)
    s.save()
    return s


def field(backend, key: str, name: bytes) -> tuple[str, bytes]:
    session = Keys.for_session("charon", key).session
    return session, backend.admin.hget(session, name)


def test_tampered_value_reads_as_empty_and_is_logged(backend, caplog):
    s = stored({"role": "user", "secret-note": "do not log me"})
    session, value = field(backend, s.session_key, b"role")
    backend.admin.hset(session, b"role", value.replace(b'"user"', b'"root"'))
    with caplog.at_level(logging.WARNING, logger=SECRET_LOGGER):
        loaded = SessionStore(s.session_key)
        assert dict(loaded.items()) == {}
    assert loaded.session_key is None  # a later save starts a new session
    records = [r for r in caplog.records if r.name == SECRET_LOGGER]
    assert len(records) == 1
    message = records[0].getMessage()
    assert s.session_key not in message
    assert s.session_key[TAG_LENGTH:] not in message
    assert "root" not in message
    assert "do not log me" not in message
    # Nothing was lost: the tampered session is left as it was, for inspection.
    assert backend.admin.hget(session, b"secret-note") is not None


def test_tampered_session_gives_the_view_an_empty_session(backend):
    client = Client()
    client.get("/set/role/user/")
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    session, value = field(backend, key, b"role")
    backend.admin.hset(session, b"role", value[:-3])  # truncated
    response = client.get("/session.json")
    assert response.status_code == 200
    assert response.json() == {"data": {}}


def test_value_copied_from_another_session_is_rejected(backend):
    victim = stored({"_auth_user_id": "1"})
    attacker = stored({"_auth_user_id": "2"})
    _, value = field(backend, victim.session_key, b"_auth_user_id")
    session, _ = field(backend, attacker.session_key, b"_auth_user_id")
    backend.admin.hset(session, b"_auth_user_id", value)
    assert dict(SessionStore(attacker.session_key).items()) == {}


def test_value_from_another_key_prefix_is_rejected(backend):
    with backend.settings(KEY_PREFIX="site-a"):
        a = stored({"x": 1})
        session_a = Keys.for_session("site-a", a.session_key).session
        fields = backend.admin.hgetall(session_a)
    with backend.settings(KEY_PREFIX="site-b"):
        b = stored({"x": 2})
        session_b = Keys.for_session("site-b", b.session_key).session
        backend.admin.hset(session_b, b"x", fields[b"x"])
        assert dict(SessionStore(b.session_key).items()) == {}


def test_field_with_bad_utf8_name_is_rejected(backend):
    s = stored({"x": 1})
    session, value = field(backend, s.session_key, b"x")
    backend.admin.hset(session, b"\xc3(", value)
    assert dict(SessionStore(s.session_key).items()) == {}


def test_rotated_secret_in_fallbacks_is_accepted_then_rejected(backend):
    old = "old-secret-key-0123456789-abcdefghijklmnop"
    with override_settings(SECRET_KEY=old):
        s = stored({"_auth_user_id": "12", "a": 1})
    with override_settings(
        SECRET_KEY="new-secret-key-abcdefghijklmnop-0123456789", SECRET_KEY_FALLBACKS=[old]
    ):
        loaded = SessionStore(s.session_key)
        assert dict(loaded.items()) == {"_auth_user_id": "12", "a": 1}
        loaded["b"] = 2
        loaded.save()  # stays under the old tag; only "b" is signed anew
        assert loaded.session_key == s.session_key
    with override_settings(
        SECRET_KEY="new-secret-key-abcdefghijklmnop-0123456789", SECRET_KEY_FALLBACKS=[]
    ):
        assert dict(SessionStore(s.session_key).items()) == {}


@pytest.mark.parametrize("serializer", ["django.contrib.sessions.serializers.JSONSerializer"])
def test_session_serializer_setting_is_used(backend, serializer):
    with override_settings(SESSION_SERIALIZER=serializer):
        s = stored({"n": [1, 2]})
        _, value = field(backend, s.session_key, b"n")
        assert value.endswith(b"[1,2]")


def test_fast_json_path_writes_what_djangos_serializer_writes():
    from django.contrib.sessions.serializers import JSONSerializer

    from django_charon_sessions.codec import Codec

    codec = Codec(JSONSerializer(), "charon")
    values = [0, -1.5, "é☃\u2028", {"a": [1, None, True]}, [], 'q"uote\\', 10**30]
    for value in values:
        assert codec.dumps(value) == JSONSerializer().dumps(value)
    payloads = [codec.dumps(v) for v in values]
    assert codec._loads_all(payloads) == values
