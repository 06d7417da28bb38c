"""The engine under Django's own machinery: middleware, auth, commands."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.contrib.auth import aget_user, alogin, alogout, get_user_model
from django.core.management import call_command
from django.http import HttpRequest
from django.test import Client, override_settings

from django_charon_sessions.engine import SessionStore
from django_charon_sessions.keyspace import TAG_LENGTH, Keys, user_tag

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("grace", password=PASSWORD)


def cookie(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def test_login_and_logout_through_the_views(backend, user):
    client = Client()
    client.get("/set/theme/dark/")
    anonymous = cookie(client)
    response = client.post("/accounts/login/", {"username": "grace", "password": PASSWORD})
    assert response.status_code == 302
    signed_in = cookie(client)
    assert signed_in != anonymous
    assert signed_in[:TAG_LENGTH] == user_tag(str(user.pk))
    assert not SessionStore().exists(anonymous)
    assert client.get("/session.json").json()["data"]["theme"] == "dark"
    assert "Signed in as grace" in client.get("/").text
    client.post("/accounts/logout/")
    assert not SessionStore().exists(signed_in)
    assert backend.admin.exists(Keys.for_session("charon", signed_in).index) == 0


def test_password_change_keeps_this_session(backend, user):
    client = Client()
    client.login(username="grace", password=PASSWORD)
    before = cookie(client)
    response = client.post(
        "/accounts/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": "N3w-pass-word!",
            "new_password2": "N3w-pass-word!",
        },
    )
    assert response.status_code == 302
    after = cookie(client)
    assert after != before
    assert not SessionStore().exists(before)
    assert "Signed in as grace" in client.get("/").text


@override_settings(SESSION_SAVE_EVERY_REQUEST=True)
def test_save_every_request_moves_the_expiry(backend):
    client = Client()
    client.get("/set/a/1/")
    session = Keys.for_session("charon", cookie(client)).record
    backend.admin.pexpire(session, 10_000)
    stored_before = backend.admin.get(session)
    client.get("/session.json")
    assert backend.admin.pttl(session) > 10_000
    assert backend.admin.get(session) == stored_before


def test_clearsessions_command(backend):
    s = SessionStore()
    s.update({"_auth_user_id": "3"})
    s.set_expiry(1)
    s.save()
    keep = SessionStore()
    keep.update({"_auth_user_id": "3"})
    keep.save()
    index = Keys.for_session("charon", keep.session_key).index
    time.sleep(1.2)
    call_command("clearsessions")
    assert backend.admin.zcard(index) == 1


@pytest.mark.django_db(transaction=True)
async def test_alogin_and_alogout(backend, user):
    request = HttpRequest()
    request.session = SessionStore()
    await request.session.aset("cart", [1])
    await request.session.asave()
    anonymous = request.session.session_key
    await alogin(request, user)
    await request.session.asave()
    key = request.session.session_key
    assert key != anonymous
    assert key[:TAG_LENGTH] == user_tag(str(user.pk))
    fresh = HttpRequest()
    fresh.session = SessionStore(key)
    assert (await aget_user(fresh)).pk == user.pk
    await alogout(request)
    assert not await SessionStore().aexists(key)


def test_custom_user_model_is_not_required_for_anonymous_use(backend):
    # The engine must not need auth for anonymous sessions.
    assert get_user_model() is not None
    client = Client()
    assert client.get("/").status_code == 200
