"""A password change keeps exactly the sessions Django's own check keeps (issue 12).

Django ends a user's other sessions lazily: each request compares the hash
stored in its session with the user's current one. This engine ends them at
once, and must never end one that Django would keep: the session of the
request that changed the password (``update_session_auth_hash()``, which
Django's views call *after* saving the user), with or without
SessionMetadataMiddleware, sync and async. Each scenario is also run on
Django's own ``db`` engine, whose survivors are the reference.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.contrib.sessions.backends.base import UpdateError
from django.db.models.signals import post_save
from django.test import AsyncClient, Client, override_settings
from django.urls import reverse

from django_charon_sessions import api
from django_charon_sessions.engine import SessionStore
from django_charon_sessions.keyspace import member_of
from django_charon_sessions.signals import sessions_ended
from tests.commands import count
from tests.devices import PASSWORD, device, key_of, signed_in

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.password_urls")]

NEW = "Fresh-pass-987"
DJANGO_DB = "django.contrib.sessions.backends.db"
METADATA = "django_charon_sessions.middleware.SessionMetadataMiddleware"
CHANGE_FORM = {"old_password": PASSWORD, "new_password1": NEW, "new_password2": NEW}

Devices = dict[str, Client]


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("ada", password=PASSWORD)


@pytest.fixture(params=["middleware", "no-middleware"])
def middleware(request, settings):
    if request.param == "no-middleware":
        settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if m != METADATA]
    return request.param


@pytest.fixture
def ended():
    seen: list[tuple[int, str]] = []

    def receiver(sender, count, reason, **kwargs):
        seen.append((count, reason))

    sessions_ended.connect(receiver)
    yield seen
    sessions_ended.disconnect(receiver)


def run(user, change: Callable[[Devices], object]) -> tuple[set[str], Devices]:
    """Sign in three devices, run ``change``; return who is still signed in."""
    devices = {name: device(user) for name in ("here", "elsewhere", "there")}
    change(devices)
    return {name for name, c in devices.items() if signed_in(c)}, devices


def django_keeps(user, change: Callable[[Devices], object]) -> set[str]:
    """Return the devices Django's own ``db`` engine keeps signed in after ``change``."""
    with override_settings(SESSION_ENGINE=DJANGO_DB):
        kept, _ = run(user, change)
    # Back to the first password, without a post_save (no account event).
    type(user).objects.filter(pk=user.pk).update(password=make_password(PASSWORD))
    user.refresh_from_db()
    return kept


def indexed(user) -> set[str]:
    return {s.id for s in api.list_sessions(user)}


def members(devices: Devices, names: set[str]) -> set[str]:
    return {member_of(key_of(devices[n])) for n in names}


def ours(user, change: Callable[[Devices], object]) -> tuple[set[str], set[str], set[str]]:
    """Run ``change`` on this engine: (indexed right after it, expected index, signed in)."""
    snapshot: dict[str, set[str]] = {}

    def change_and_look(devices: Devices) -> None:
        change(devices)
        snapshot["indexed"] = indexed(user)  # before any other request comes

    kept, devices = run(user, change_and_look)
    return snapshot["indexed"], members(devices, kept), kept


def post_change_view(devices: Devices) -> None:
    response = devices["here"].post("/accounts/password_change/", CHANGE_FORM)
    assert response.status_code == 302, response.status_code


def test_password_change_view_keeps_exactly_this_session(backend, user, middleware, ended):
    reference = django_keeps(user, post_change_view)
    assert reference == {"here"}
    now_indexed, expected, kept = ours(user, post_change_view)
    assert kept == reference
    assert now_indexed == expected  # the others ended at once, not on their next request
    assert ended == [(2, "password_change")]


def test_the_change_costs_one_call_to_end_the_others(backend, user, middleware):
    if backend.name == "fake":
        pytest.skip("counts with MONITOR on real servers")
    here = device(user)
    device(user)
    sent = count(backend, lambda: here.post("/accounts/password_change/", CHANGE_FORM))
    # load, cycle (update_session_auth_hash), save, and one call ending the other.
    assert sent == ["FCALL"] * 4
    assert signed_in(here) and len(indexed(user)) == 1


def test_refreshing_the_session_before_saving_the_user_keeps_it(backend, user, middleware):
    def change(devices: Devices) -> None:
        response = devices["here"].post("/refresh-then-save/", {"password": NEW})
        assert response.status_code == 200

    reference = django_keeps(user, change)
    now_indexed, expected, kept = ours(user, change)
    assert kept == reference == {"here"}
    assert now_indexed == expected


def test_a_change_that_does_not_refresh_the_session_ends_it_too(backend, user, middleware):
    def change(devices: Devices) -> None:
        assert devices["here"].post("/change-only/", {"password": NEW}).status_code == 200

    reference = django_keeps(user, change)
    now_indexed, _, kept = ours(user, change)
    assert kept == reference == set()
    assert now_indexed == set()


def test_a_change_outside_a_request_ends_all_and_a_later_refresh_signs_out(
    backend, user, middleware
):
    # Django's own engine: the later request's get_user() finds the old hash
    # and signs it out before update_session_auth_hash() could refresh it.
    def change(devices: Devices) -> None:
        user.set_password(NEW)
        user.save()
        answer = devices["here"].get("/refresh/")
        assert answer.status_code == 200  # never SessionInterrupted
        assert answer.json() == {"user": "AnonymousUser"}

    reference = django_keeps(user, change)
    assert reference == set()
    here, elsewhere = device(user), device(user)
    user.set_password(NEW)
    user.save()
    assert indexed(user) == set()  # at once, outside any request
    answer = here.get("/refresh/")
    assert answer.status_code == 200 and answer.json() == {"user": "AnonymousUser"}
    assert not signed_in(here) and not signed_in(elsewhere)


def test_a_request_saving_the_old_hash_meanwhile_does_not_survive(backend, user, middleware):
    """Force two interleavings of another device's request with the change.

    ``elsewhere`` loaded its session before the change and saves it while the
    changing request is still running (the sessions are not ended yet);
    ``there`` loaded before and saves after the change is done.
    """
    here, elsewhere, there = device(user), device(user), device(user)
    racing = SessionStore(key_of(elsewhere))
    racing["cart"] = [1]  # loaded, old hash
    late = SessionStore(key_of(there))
    late["cart"] = [2]
    saved: list[bool] = []

    def save_during_the_change(sender, instance, **kwargs):
        racing.save()  # the changing request has saved the user, not yet its session
        saved.append(True)

    post_save.connect(save_during_the_change, sender=type(user))
    try:
        assert here.post("/accounts/password_change/", CHANGE_FORM).status_code == 302
    finally:
        post_save.disconnect(save_during_the_change, sender=type(user))
    assert saved == [True]
    with pytest.raises(UpdateError):
        late.save()
    assert indexed(user) == {member_of(key_of(here))}
    assert signed_in(here) and not signed_in(elsewhere) and not signed_in(there)


def test_an_admin_changing_someone_elses_password_ends_all_of_theirs(
    backend, user, django_user_model
):
    boss = django_user_model.objects.create_superuser("boss", "boss@example.com", PASSWORD)
    mine = device(user)
    admin = device(boss)
    form = {"password1": NEW, "password2": NEW, "usable_password": "true"}
    # Django's UserAdmin gives this view one name, whatever the user model.
    url = reverse("admin:auth_user_password_change", args=[user.pk])
    response = admin.post(url, form)
    assert response.status_code == 302, response.content[:400]
    assert indexed(user) == set()
    assert not signed_in(mine) and signed_in(admin)


@pytest.mark.django_db(transaction=True)
async def test_async_password_change_keeps_this_session(backend, user, middleware, ended):
    password = [PASSWORD]

    async def sign_in() -> AsyncClient:
        client = AsyncClient()
        form = {"username": "ada", "password": password[-1]}
        assert (await client.post("/accounts/login/", form)).status_code == 302
        return client

    async def is_signed_in(client: AsyncClient) -> bool:
        return "Signed in as" in (await client.get("/")).text

    async def check(path: str, form: dict[str, str], new: str) -> None:
        here, elsewhere = await sign_in(), await sign_in()
        assert (await here.post(path, form)).status_code in (200, 302)
        password.append(new)
        key = here.cookies[settings.SESSION_COOKIE_NAME].value
        assert {s.id for s in await api.alist_sessions(user)} == {member_of(key)}
        assert await is_signed_in(here) and not await is_signed_in(elsewhere)

    # Django's sync view under the async handler, then an async view.
    await check("/accounts/password_change/", CHANGE_FORM, NEW)
    await check("/achange/", {"password": "Another-pass-654"}, "Another-pass-654")
    # The second change also ends the first one's device "here".
    assert ended == [(1, "password_change"), (2, "password_change")]
    # An async change outside any request ends every session at once.
    await sign_in()
    user.set_password("Third-pass-321")
    await user.asave()
    assert await api.alist_sessions(user) == []


def test_request_scopes_do_not_leak_into_code_after_a_request(backend, user):
    # After a request, code in the same thread is outside any request again.
    here = device(user)
    here.get("/")
    user.set_password(NEW)
    user.save()
    assert indexed(user) == set()
