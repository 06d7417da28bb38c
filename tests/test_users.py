"""Per-user sessions: metadata, the public API, account events (issue 3)."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.base import UpdateError
from django.test import Client

from django_charon_sessions import api
from django_charon_sessions.engine import SessionStore
from django_charon_sessions.keyspace import Keys, key_prefix, member_of
from django_charon_sessions.signals import sessions_ended
from tests.commands import count
from tests.devices import CHROME_MAC, FIREFOX, PASSWORD, device, key_of, signed_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def user(django_user_model):
    return django_user_model.objects.create_user("ada", password=PASSWORD)


@pytest.fixture
def other(django_user_model):
    return django_user_model.objects.create_user("bob", password=PASSWORD)


@pytest.fixture
def ended():
    """Collect sessions_ended signals."""
    seen: list[dict[str, object]] = []

    def receiver(sender, **kwargs):
        seen.append({"sender": sender, **kwargs})

    sessions_ended.connect(receiver)
    yield seen
    sessions_ended.disconnect(receiver)


def seed(user, n: int) -> list[str]:
    """Store ``n`` sessions of ``user`` through the engine."""
    keys = []
    uid = api.user_id_of(user)
    for _ in range(n):
        s = SessionStore()
        s["_auth_user_id"] = uid
        s.save()
        keys.append(s.session_key)
    return keys


# -- listing ---------------------------------------------------------------------


def test_list_shows_each_device_with_its_facts(backend, user, other):
    laptop = device(user, FIREFOX, "192.0.2.10")
    phone = device(user, CHROME_MAC, "198.51.100.20")
    device(other)
    sessions = api.list_sessions(user, current_session_key=key_of(laptop))
    assert len(sessions) == 2
    by_id = {s.id: s for s in sessions}
    mine = by_id[member_of(key_of(laptop))]
    assert mine.is_current and mine.ip == "192.0.2.10"
    assert (mine.browser, mine.os) == ("Firefox 130", "Linux")
    theirs = by_id[member_of(key_of(phone))]
    assert not theirs.is_current and theirs.ip == "198.51.100.20"
    assert theirs.browser == "Chrome 120" and theirs.os.startswith("Mac OS X")
    for s in sessions:
        assert s.created <= s.last_seen < s.expires
        assert abs((s.expires - s.created).total_seconds() - settings.SESSION_COOKIE_AGE) < 10
        assert key_of(laptop) not in repr(s) and key_of(phone) not in repr(s)


def test_list_of_a_user_without_sessions(backend, user):
    assert api.list_sessions(user) == []
    assert api.list_sessions("no-such-user") == []


def test_list_of_1000_sessions_is_one_call(backend, user):
    seed(user, 1000)
    result: list[api.UserSession] = []
    commands = count(backend, lambda: result.extend(api.list_sessions(user)))
    assert commands == ["FCALL_RO"]
    assert len(result) == 1000


async def test_async_list_and_end(backend, user):
    keys = seed(user, 3)
    listed = await api.alist_sessions(user, current_session_key=keys[0])
    assert len(listed) == 3 and sum(s.is_current for s in listed) == 1
    assert await api.aend_session(user, member_of(keys[1]))
    assert await api.aend_sessions(user, keep_session_key=keys[0]) == 1
    assert [s.id for s in await api.alist_sessions(user)] == [member_of(keys[0])]


# -- ending ------------------------------------------------------------------------


def test_end_one_session_by_public_id(backend, user, other, ended):
    laptop, phone = device(user), device(user)
    intruder = device(other)
    assert not api.end_session(other, member_of(key_of(laptop)))  # not bob's session
    assert not api.end_session(user, "not-a-public-id")
    assert signed_in(laptop)
    assert api.end_session(user, member_of(key_of(laptop)))
    assert not signed_in(laptop) and signed_in(phone) and signed_in(intruder)
    assert not api.end_session(user, member_of(key_of(laptop)))  # already ended
    assert [(e["user"], e["count"], e["reason"]) for e in ended] == [(user, 1, "revoked")]
    assert ended[0]["sender"] is get_user_model()


def test_end_all_but_current_leaves_exactly_the_current_one(backend, user, other, ended):
    devices = [device(user) for _ in range(4)]
    bystander = device(other)
    current = devices[0]
    assert api.end_sessions(user, keep_session_key=key_of(current)) == 3
    assert [signed_in(d) for d in devices] == [True, False, False, False]
    assert signed_in(bystander)
    assert [s.id for s in api.list_sessions(user)] == [member_of(key_of(current))]
    assert ended[-1]["count"] == 3 and ended[-1]["reason"] == "logout_everywhere"


def test_end_all_of_10000_sessions_is_one_call(backend, user):
    keys = seed(user, 10_000)
    result: list[int] = []
    commands = count(backend, lambda: result.append(api.end_sessions(user)))
    assert commands == ["FCALL"]
    assert result == [10_000]
    assert api.list_sessions(user) == []
    assert not SessionStore().exists(keys[0]) and not SessionStore().exists(keys[-1])


def test_ended_sessions_are_purged_by_clear_expired(backend, user):
    keys = seed(user, 5)
    api.end_sessions(user)
    remaining = [k for k in keys if backend.admin.exists(Keys.for_session(key_prefix(), k).record)]
    assert remaining == keys  # dead at once, their hashes wait for cleanup
    SessionStore.clear_expired()
    assert backend.keys() == []  # nothing at all stays (SITE_ACTIVITY is off)


def test_end_all_beats_a_request_in_flight(backend, user):
    laptop = device(user)
    key = key_of(laptop)
    in_flight = SessionStore(key)
    in_flight._get_session()  # the request has read its session
    assert api.end_sessions(user) == 1
    in_flight["cart"] = [1]
    with pytest.raises(UpdateError):
        in_flight.save()
    assert not SessionStore().exists(key)
    assert backend.admin.exists(Keys.for_session(key_prefix(), key).record) == 0
    assert not signed_in(laptop)


def test_sessions_started_after_end_all_live(backend, user):
    device(user)
    api.end_sessions(user)
    later = device(user)
    assert signed_in(later)


# -- operator counts -----------------------------------------------------------------


def test_stats(backend, user, other):
    seed(user, 3)
    keys = seed(other, 2)
    anonymous = Client()
    anonymous.get("/")  # anonymous sessions are not counted
    stats = api.session_stats(active_within=timedelta(minutes=5))
    assert (stats.sessions, stats.users, stats.active) == (5, 2, 5)
    assert api.session_stats().active is None
    time.sleep(2.1)
    with backend.settings(LAST_SEEN_INTERVAL=1):
        SessionStore(keys[0]).load()  # seen again just now
    assert api.session_stats(active_within=timedelta(seconds=1)).active == 1


async def test_async_stats(backend, user):
    seed(user, 2)
    stats = await api.asession_stats(active_within=timedelta(hours=1))
    assert (stats.sessions, stats.users, stats.active) == (2, 1, 2)


# -- account events ------------------------------------------------------------------


def test_password_change_ends_the_others_and_keeps_this_one(backend, user, ended):
    here, elsewhere, there = device(user), device(user), device(user)
    response = here.post(
        "/accounts/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": "Fresh-pass-987",
            "new_password2": "Fresh-pass-987",
        },
    )
    assert response.status_code == 302
    assert signed_in(here)
    assert not signed_in(elsewhere) and not signed_in(there)
    assert [s.is_current for s in api.list_sessions(user, key_of(here))] == [True]
    assert [(e["count"], e["reason"]) for e in ended] == [(2, "password_change")]


def test_password_set_by_someone_else_ends_all(backend, user, other):
    mine = device(user)
    watcher = device(other)
    user.set_password("set-by-admin-123")
    user.save()
    assert not signed_in(mine) and signed_in(watcher)


def test_deactivating_and_deleting_end_all(backend, user, other, ended):
    a, b = device(user), device(other)
    user.is_active = False
    user.save()
    assert not signed_in(a) and api.list_sessions(user) == []
    other_id = other.pk
    other.delete()
    assert api.list_sessions(other_id) == []
    assert not SessionStore().exists(key_of(b))
    assert [e["reason"] for e in ended] == ["deactivated", "deleted"]


def test_account_events_can_be_turned_off(backend, user):
    mine = device(user)
    with backend.settings(
        END_OTHER_SESSIONS_ON_PASSWORD_CHANGE=False, END_SESSIONS_ON_DEACTIVATE=False
    ):
        user.set_password("another-one-456")
        user.save()
        user.is_active = False
        user.save()
    assert len(api.list_sessions(user)) == 1
    assert SessionStore().exists(key_of(mine))


def test_session_limit_ends_the_oldest(backend, user, ended):
    with backend.settings(MAX_SESSIONS_PER_USER=2):
        first = device(user)
        time.sleep(1.05)  # creation times are whole seconds
        second = device(user)
        third = device(user)
    assert not signed_in(first) and signed_in(second) and signed_in(third)
    assert len(api.list_sessions(user)) == 2
    assert [(e["user_id"], e["count"], e["reason"]) for e in ended] == [
        (api.user_id_of(user), 1, "limit")
    ]


# -- request facts -------------------------------------------------------------------


def facts_of(backend, client: Client) -> dict[str, str]:
    keys = Keys.for_session(key_prefix(), key_of(client))
    value = backend.admin.hget(keys.meta, keys.member).decode()
    return json.loads(value[22:]) if value[22:] else {}


def test_forwarded_for_is_believed_from_a_trusted_proxy_only(backend, user):
    with backend.settings(TRUSTED_PROXIES=["10.0.0.1"]):
        spoofed = Client(REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR="203.0.113.66")
        spoofed.post("/accounts/login/", {"username": "ada", "password": PASSWORD})
    ips = {s.id: s.ip for s in api.list_sessions(user)}
    assert ips[member_of(key_of(spoofed))] == "198.51.100.7"


def test_trusted_proxy_ip(backend, user):
    with backend.settings(TRUSTED_PROXIES=["10.0.0.1"]):
        client = Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9, 10.0.0.1")
        client.post("/accounts/login/", {"username": "ada", "password": PASSWORD})
    assert facts_of(backend, client)["ip"] == "203.0.113.9"


def test_forwarded_for_is_ignored_without_proxy_settings(backend, user):
    client = Client(REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR="203.0.113.66")
    client.post("/accounts/login/", {"username": "ada", "password": PASSWORD})
    assert facts_of(backend, client)["ip"] == "198.51.100.7"


def test_proxy_count(backend, user):
    with backend.settings(PROXY_COUNT=1):
        client = Client(REMOTE_ADDR="10.9.9.9", HTTP_X_FORWARDED_FOR="203.0.113.5, 10.9.9.9")
        client.post("/accounts/login/", {"username": "ada", "password": PASSWORD})
    assert facts_of(backend, client)["ip"] == "203.0.113.5"


def test_capture_can_be_turned_off_and_user_agent_is_bounded(backend, user):
    with backend.settings(CAPTURE_IP=False, USER_AGENT_MAX_LENGTH=40):
        client = Client(HTTP_USER_AGENT="x" * 5000, REMOTE_ADDR="192.0.2.1")
        client.post("/accounts/login/", {"username": "ada", "password": PASSWORD})
    assert facts_of(backend, client) == {"ua": "x" * 40}
    with backend.settings(CAPTURE_IP=False, CAPTURE_USER_AGENT=False):
        quiet = Client(HTTP_USER_AGENT=FIREFOX)
        quiet.post("/accounts/login/", {"username": "ada", "password": PASSWORD})
    assert facts_of(backend, quiet) == {}
    [listed] = [s for s in api.list_sessions(user) if s.id == member_of(key_of(quiet))]
    assert (listed.ip, listed.browser, listed.os) == ("", "Unknown", "Unknown")


def test_last_seen_keeps_facts_fresh(backend, user):
    with backend.settings(LAST_SEEN_INTERVAL=1):
        client = Client(REMOTE_ADDR="192.0.2.1", HTTP_USER_AGENT=FIREFOX)
        client.post("/accounts/login/", {"username": "ada", "password": PASSWORD})
        time.sleep(1.1)
        client.get("/", REMOTE_ADDR="192.0.2.99")
    assert facts_of(backend, client)["ip"] == "192.0.2.99"


def test_user_model_in_use(user):
    """Documents which user model this run exercises (see tox env *-uuid)."""
    import os

    expected = "demo.User" if os.environ.get("CHARON_TEST_USER_MODEL") == "uuid" else "auth.User"
    assert user._meta.label == expected
    if expected == "demo.User":
        assert len(api.user_id_of(user)) == 36  # a UUID, not an integer


def test_session_limit_ignores_expired_entries(backend, user, ended):
    with backend.settings(MAX_SESSIONS_PER_USER=2):
        [long_lived] = seed(user, 1)
        brief = SessionStore()
        brief["_auth_user_id"] = api.user_id_of(user)
        brief.set_expiry(1)
        brief.save()
        time.sleep(1.1)  # brief has expired; its index entry may linger
        seed(user, 1)
    assert SessionStore().exists(long_lived)
    assert len(api.list_sessions(user)) == 2
    assert ended == []


def test_lost_metadata_comes_back_on_the_next_load(backend, user):
    laptop = device(user, FIREFOX, "198.51.100.23")
    keys = Keys.for_session(key_prefix(), key_of(laptop))
    backend.admin.delete(keys.meta)  # as an eviction would
    backend.admin.setrange(keys.record, 0, "0000000000")  # "last seen" is due
    assert signed_in(laptop)
    # Written again with an expiry: never IP and user agent left forever.
    assert backend.admin.pttl(keys.meta) > 0
    [listed] = api.list_sessions(user)
    assert listed.ip == "198.51.100.23"
    assert listed.browser.startswith("Firefox")
    assert listed.created.year > 2000
