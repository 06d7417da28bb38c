"""Django's key contract (DESIGN invariant 10): shape, login, bad keys, rotation."""

from __future__ import annotations

import logging
import math
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.signals import user_logged_in
from django.contrib.sessions.middleware import SessionMiddleware
from django.core.checks import run_checks
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory, override_settings

from django_charon_sessions import api
from django_charon_sessions.engine import SessionStore
from django_charon_sessions.keyspace import (
    KEY_LENGTH,
    RANDOM_LENGTH,
    TAG_LENGTH,
    Keys,
    is_engine_key,
    user_tag,
)

PASSWORD = "correct-horse-battery"


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("ada", password=PASSWORD)


def test_keys_fit_djangos_column_and_alphabet(backend):
    keys = set()
    for n in range(200):
        s = SessionStore()
        s["n"] = n
        if n % 2:
            s["_auth_user_id"] = str(n)
        s.save()
        keys.add(s.session_key)
    assert len(keys) == 200
    for key in keys:
        assert len(key) == KEY_LENGTH <= 40
        assert len(key) != 32  # never mistaken for a key of Django's own engines
        assert set(key) <= set("abcdefghijklmnopqrstuvwxyz0123456789")
    assert RANDOM_LENGTH * math.log2(36) >= 128


BAD_KEYS = {
    "none": None,
    "short": "abc",
    "overlong": "a" * 41,
    "non-ASCII": "ü" * 12,
    "unknown, Django-valid": "12345678",
    "unknown, engine-shaped": "a" * TAG_LENGTH + "0" * RANDOM_LENGTH,
    "unknown, Django-shaped": "b" * 32,
}


@pytest.mark.parametrize("name", list(BAD_KEYS))
def test_load_of_a_bad_or_unknown_key_is_empty_and_writes_nothing(backend, name):
    before = backend.keys()
    s = SessionStore(BAD_KEYS[name])
    assert s.load() == {}
    assert s.session_key is None
    assert backend.keys() == before


@pytest.mark.parametrize("name", list(BAD_KEYS))
async def test_aload_of_a_bad_or_unknown_key_is_empty_and_writes_nothing(backend, name):
    before = backend.keys()
    s = SessionStore(BAD_KEYS[name])
    assert await s.aload() == {}
    assert s.session_key is None
    assert backend.keys() == before


def test_any_string_of_eight_characters_is_a_valid_key():
    assert SessionStore("12345678").session_key == "12345678"
    assert SessionStore("1234567").session_key is None
    assert SessionStore("a" * 40).session_key == "a" * 40
    assert SessionStore("a" * 41).session_key is None


def test_a_record_of_the_old_layout_never_crashes_a_request(backend):
    # 0.1 kept a hash per session under a 20 character tag and a 52 character key.
    old_key = "a" * 20 + "0" * 32
    backend.admin.hset("charon:{" + "a" * 20 + "}:s:" + "0" * 26, "\xffc", "1")
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = old_key
    assert client.get("/session.json").json()["data"] == {}
    client.get("/set/k/v/")
    new = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert is_engine_key(new)
    assert dict(SessionStore(new).items()) == {"k": "v"}


@pytest.mark.django_db
def test_the_key_read_in_a_login_receiver_is_the_cookies(backend, user):
    seen: list[str | None] = []

    def record(sender: Any, request: Any, **kwargs: Any) -> None:
        seen.append(request.session.session_key)

    user_logged_in.connect(record, dispatch_uid="test-keys-record")
    try:
        client = Client()
        client.get("/set/cart/1/")  # an anonymous session first
        anonymous = client.cookies[settings.SESSION_COOKIE_NAME].value
        client.post("/accounts/login/", {"username": "ada", "password": PASSWORD})
    finally:
        user_logged_in.disconnect(dispatch_uid="test-keys-record")
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert seen == [cookie] != [anonymous]
    assert cookie[:TAG_LENGTH] == user_tag(str(user.pk))
    assert SessionStore().exists(cookie)
    assert [s.id for s in api.list_sessions(user)] == [api.public_id(cookie)]


@pytest.mark.django_db
def test_the_key_read_in_the_view_after_login_is_stored(backend, user):
    read: list[str | None] = []

    def view(request: HttpRequest) -> HttpResponse:
        request.session["cart"] = [1]
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        read.append(request.session.session_key)
        return HttpResponse("ok")

    request = RequestFactory().get("/")
    response = SessionMiddleware(view)(request)
    cookie = response.cookies[settings.SESSION_COOKIE_NAME].value
    assert read == [cookie]
    assert dict(SessionStore(cookie).items())["cart"] == [1]
    assert SessionStore().exists(cookie)


def test_a_key_read_before_the_user_id_is_set_changes_with_a_warning(backend, caplog):
    s = SessionStore()
    s["a"] = 1
    s.save()
    s.cycle_key()
    early = s.session_key  # read between cycle_key() and setting the user id
    s["_auth_user_id"] = "41"
    with caplog.at_level(logging.WARNING, logger="django_charon_sessions"):
        s.save()
    assert s.session_key != early
    assert s.session_key[:TAG_LENGTH] == user_tag("41")
    assert "read before the user id was set" in caplog.text
    assert early not in caplog.text


def test_a_pending_key_does_not_exist_until_saved(backend):
    s = SessionStore()
    s["a"] = 1
    s.save()
    s.cycle_key()
    assert not s.is_empty()
    key = s.session_key
    assert not SessionStore().exists(key)
    s.save()
    assert s.session_key == key
    assert SessionStore().exists(key)


# -- rotation ------------------------------------------------------------------------------


def test_with_tag_secret_a_rotation_keeps_sessions_in_their_users_slot(backend):
    with override_settings(CHARON_SESSIONS={**backend.config, "TAG_SECRET": "tags-never-rotate"}):
        s = SessionStore()
        s.update({"_auth_user_id": "51", "a": 1})
        s.save()
        key = s.session_key
        old_secret = settings.SECRET_KEY
        with override_settings(SECRET_KEY="rotated-1", SECRET_KEY_FALLBACKS=[old_secret]):
            assert user_tag("51") == key[:TAG_LENGTH]
            active = SessionStore(key)
            assert active["a"] == 1
            active.save()  # unchanged data, but sealed with a fallback: re-sealed
        with override_settings(SECRET_KEY="rotated-1", SECRET_KEY_FALLBACKS=[]):
            assert SessionStore(key)["a"] == 1
            assert [x.id for x in api.list_sessions("51")] == [api.public_id(key)]
            assert api.end_sessions("51") == 1
            assert dict(SessionStore(key).items()) == {}


def test_without_tag_secret_a_rotation_is_warned_about(settings):
    ids = {m.id for m in run_checks()}
    assert "django_charon_sessions.W007" not in ids
    settings.SECRET_KEY_FALLBACKS = ["an-old-secret-key"]
    assert "django_charon_sessions.W007" in {m.id for m in run_checks()}
    settings.CHARON_SESSIONS = {**settings.CHARON_SESSIONS, "TAG_SECRET": "fixed"}
    assert "django_charon_sessions.W007" not in {m.id for m in run_checks()}
    settings.CHARON_SESSIONS = {**settings.CHARON_SESSIONS, "TAG_SECRET": 5}
    assert "django_charon_sessions.E021" in {m.id for m in run_checks()}


def test_the_user_tag_reveals_nothing_and_changes_only_with_its_secret():
    with override_settings(CHARON_SESSIONS={"TAG_SECRET": "one"}):
        tag = user_tag("1")
        with override_settings(SECRET_KEY="something-else-entirely"):
            assert user_tag("1") == tag
    with override_settings(CHARON_SESSIONS={"TAG_SECRET": "two"}):
        assert user_tag("1") != tag


def test_a_session_record_lives_where_its_key_says(backend):
    s = SessionStore()
    s["_auth_user_id"] = "7"
    s.save()
    keys = Keys.for_session("charon", s.session_key)
    assert backend.admin.type(keys.record) in (b"string", "string")
    assert backend.admin.zscore(keys.index, keys.member) is not None


def test_an_empty_user_id_is_an_anonymous_session(backend):
    # Hypothesis found this one: Django finds no user for "", so neither do we.
    s = SessionStore()
    s["_auth_user_id"] = ""
    s.save()
    assert dict(SessionStore(s.session_key).items()) == {"_auth_user_id": ""}
    keys = Keys.for_session("charon", s.session_key)
    assert backend.admin.exists(keys.index) == 0
