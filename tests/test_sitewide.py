"""The site-wide sessions page, its activity sets and the "who is online" counters."""

from __future__ import annotations

import time

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django.urls import reverse

from django_charon_sessions import activity, api
from django_charon_sessions.engine import SessionStore
from django_charon_sessions.keyspace import (
    Keys,
    activity_keys,
    activity_pattern,
    key_prefix,
    member_of,
)
from django_charon_sessions.sitewide import SiteSessionsAdmin
from tests.devices import CHROME_MAC, FIREFOX, PASSWORD, csrf_field, device, key_of
from tests.test_admin import staff

pytestmark = [pytest.mark.django_db, pytest.mark.backends]

PAGE = reverse("admin:django_charon_sessions_sitesession_changelist")
END = PAGE + "end/"


@pytest.fixture(autouse=True)
def _site_activity(backend):
    with backend.settings(SITE_ACTIVITY=True):
        yield


@pytest.fixture
def ada(django_user_model):
    return django_user_model.objects.create_user("ada", "ada@example.com", PASSWORD)


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", "bob@example.com", PASSWORD)


@pytest.fixture
def boss(django_user_model):
    return django_user_model.objects.create_superuser("boss", "boss@example.com", PASSWORD)


def entry_key(session_key: str) -> str:
    return activity_keys(Keys.for_session(key_prefix(), session_key).index)[0]


def age(backend, session_key: str, user_id: str, seconds: int) -> None:
    """Make a session look last seen ``seconds`` ago in its activity set."""
    keys = Keys.for_session(key_prefix(), session_key)
    entry = session_key[:15] + keys.member + user_id
    at = int(time.time() * 1000) - seconds * 1000
    backend.admin.zadd(activity_keys(keys.index)[0], {entry: at}, xx=True)
    backend.admin.zadd(activity_keys(keys.index)[1], {user_id: at}, xx=True)


def pick(client: Client, user) -> str:
    return f"{member_of(key_of(client))}:{user.pk}"


# -- the activity sets --------------------------------------------------------------


def test_sign_in_and_the_last_seen_update_note_a_session_as_active(backend, ada):
    s = SessionStore()
    s["_auth_user_id"] = str(ada.pk)
    s.save()
    key = entry_key(s.session_key)
    entry = s.session_key[:15] + member_of(s.session_key) + str(ada.pk)
    first = backend.admin.zscore(key, entry)
    assert first is not None and backend.admin.pttl(key) > 0
    # Due for the "last seen" update: the load moves its score.
    record = Keys.for_session(key_prefix(), s.session_key).record
    backend.admin.setrange(record, 0, "0000000000")
    backend.admin.zadd(key, {entry: 1000}, xx=True)
    assert SessionStore(s.session_key).load()
    assert backend.admin.zscore(key, entry) >= first
    # Not due: the next load leaves the activity sets alone.
    backend.admin.zadd(key, {entry: 2000}, xx=True)
    assert SessionStore(s.session_key).load()
    assert backend.admin.zscore(key, entry) == 2000
    # Anonymous sessions are not noted anywhere.
    anon = SessionStore()
    anon["a"] = 1
    anon.save()
    noted = [
        e
        for k in backend.admin.scan_iter(match=activity_pattern(key_prefix()), count=1000)
        for e in backend.admin.zrange(k, 0, -1)
    ]
    assert noted == [entry.encode()]


def test_entries_leave_with_their_window(backend, ada, bob):
    old = SessionStore()
    old["_auth_user_id"] = str(ada.pk)
    old.save()
    key = entry_key(old.session_key)
    entry = old.session_key[:15] + member_of(old.session_key) + str(ada.pk)
    backend.admin.zadd(key, {entry: 1000}, xx=True)  # seen long ago
    # Another session written to the same slot trims it.
    new = SessionStore()
    new["_auth_user_id"] = str(ada.pk)
    new.save()
    assert backend.admin.zscore(key, entry) is None


def test_online_counts_users_and_sessions_per_window(backend, ada, bob):
    one, two, three = device(ada), device(ada, CHROME_MAC), device(bob)
    assert [(o.users, o.sessions) for o in activity.online()] == [(2, 3)] * 3
    age(backend, key_of(three), str(bob.pk), 30 * 60)
    assert [(o.users, o.sessions) for o in activity.online()] == [(1, 2), (2, 3), (2, 3)]
    age(backend, key_of(one), str(ada.pk), 2 * 3600)
    age(backend, key_of(two), str(ada.pk), 2 * 3600)
    assert [(o.users, o.sessions) for o in activity.online()] == [(0, 0), (1, 1), (2, 3)]


def test_recent_sessions_are_live_newest_first_and_paged(backend, ada, bob):
    clients = [device(ada), device(bob), device(ada, CHROME_MAC)]
    for n, (client, user) in enumerate(zip(clients, (ada, bob, ada), strict=True)):
        age(backend, key_of(client), str(user.pk), 100 - n)  # the last is the newest
    api.end_session(bob, member_of(key_of(clients[1])))  # ended: never listed
    first, cursor = activity.recent_sessions(1)
    assert [s.session.id for s in first] == [member_of(key_of(clients[2]))]
    rest, cursor = activity.recent_sessions(5, before_ms=cursor)
    assert [s.session.id for s in rest] == [member_of(key_of(clients[0]))]
    assert cursor is None or activity.recent_sessions(5, before_ms=cursor)[0] == []


# -- SITE_ACTIVITY off (the default) ----------------------------------------------------


def _activity_sets(backend) -> list[bytes]:
    return list(backend.admin.scan_iter(match=activity_pattern(key_prefix()), count=1000))


def test_without_site_activity_nothing_is_noted_and_the_page_searches_users(backend, ada, boss):
    with backend.settings(SITE_ACTIVITY=False):
        ada_client = device(ada, CHROME_MAC, "198.51.100.7")
        admin_client = device(boss)
        # The "last seen" update and a new key (cycle_key) write no activity either.
        record = Keys.for_session(key_prefix(), key_of(ada_client)).record
        backend.admin.setrange(record, 0, "0000000000")
        assert SessionStore(key_of(ada_client)).load()
        moved = SessionStore(key_of(ada_client))
        moved.cycle_key()
        assert _activity_sets(backend) == []
        page = admin_client.get(PAGE).text
        assert 'id="charon-activity-off"' in page and "SITE_ACTIVITY" in page
        assert "Who is online" not in page and 'name="pick"' not in page
        assert 'value="ip"' not in page and "No live sessions found." not in page
        found = admin_client.get(PAGE, {"q": "ada"}).text
        assert "198.51.100.7" in found and "Chrome 120 on Mac OS X" in found
        # An IP search (from an old link) is a username search here: nothing matches.
        by_ip = admin_client.get(PAGE, {"q": "198.51.100.7", "by": "ip"}).text
        assert "No live sessions found." in by_ip
    assert _activity_sets(backend) == []


# -- the page ---------------------------------------------------------------------------


def test_page_lists_all_users_sessions_with_counters(backend, ada, bob, boss):
    device(ada), device(bob, CHROME_MAC, "198.51.100.7")
    admin_client = device(boss, FIREFOX, "192.0.2.99")
    assert 'href="' + PAGE + '"' in admin_client.get(reverse("admin:index")).text
    page = admin_client.get(PAGE).text
    assert "Who is online" in page and "5 minutes" in page
    assert page.index("198.51.100.7") < page.index("192.0.2.10")  # bob's is newer
    assert "Chrome 120 on Mac OS X" in page and 'name="pick"' in page
    assert "Your current session" in page
    assert "Location" not in page  # no session's facts carry one


def test_view_only_staff_sees_no_actions_and_may_not_post(backend, django_user_model, ada):
    ada_client = device(ada)
    viewer = device(staff(django_user_model, "viewer", "view"))
    page = viewer.get(PAGE)
    assert page.status_code == 200
    assert 'name="pick"' not in page.text and "Revoke" not in page.text
    assert viewer.get(END + "?everywhere=" + str(ada.pk)).status_code == 403
    response = viewer.post(END, {"pick": pick(ada_client, ada), "post": "yes"})
    assert response.status_code == 403
    assert len(api.list_sessions(ada)) == 1
    nobody = device(staff(django_user_model, "nobody"))
    assert nobody.get(PAGE).status_code == 403
    assert 'href="' + PAGE + '"' not in nobody.get(reverse("admin:index")).text


def test_bulk_revoke_confirms_then_ends_the_picked_sessions(backend, ada, bob, boss):
    a1, a2, b1 = device(ada), device(ada, CHROME_MAC), device(bob)
    admin_client = device(boss, csrf=True)
    picks = [pick(a1, ada), pick(b1, bob)]
    assert Client().post(END, {"pick": picks, "post": "yes"}).status_code == 302  # to log in
    no_token = admin_client.post(END, {"pick": picks, "post": "yes"})
    assert no_token.status_code == 403  # CSRF
    confirm = admin_client.post(END, {"pick": picks, **csrf_field(admin_client)})
    assert confirm.status_code == 200 and "Revoke 2 sessions?" in confirm.text
    assert len(api.list_sessions(ada)) == 2  # nothing ended yet
    done = admin_client.post(END, {"pick": picks, "post": "yes", **csrf_field(admin_client)})
    assert done.status_code == 302
    assert [s.id for s in api.list_sessions(ada)] == [member_of(key_of(a2))]
    assert api.list_sessions(bob) == []
    (entry,) = LogEntry.objects.filter(object_id=str(bob.pk))
    # The history names the device, as the per-user page's does.
    assert "Revoked the session of Firefox" in entry.get_change_message()


def test_log_out_everywhere_from_a_row(backend, ada, boss):
    device(ada), device(ada, CHROME_MAC)
    admin_client = device(boss)
    confirm = admin_client.get(END + f"?everywhere={ada.pk}")
    assert "ends all 2 of their live sessions" in confirm.text
    assert len(api.list_sessions(ada)) == 2
    admin_client.post(END, {"everywhere": str(ada.pk), "post": "yes"})
    assert api.list_sessions(ada) == []


def test_search_by_user_ip_and_browser(backend, ada, bob, boss):
    device(ada, FIREFOX, "203.0.113.5"), device(bob, CHROME_MAC, "198.51.100.7")
    admin_client = device(boss)
    by_email = admin_client.get(PAGE, {"q": "ADA@example.com", "by": "user"}).text
    assert "203.0.113.5" in by_email and "198.51.100.7" not in by_email
    by_ip = admin_client.get(PAGE, {"q": "198.51.100.7", "by": "ip", "within": "day"}).text
    assert "198.51.100.7" in by_ip and "203.0.113.5" not in by_ip
    assert "seen within the last day" in by_ip  # the bound is stated
    by_browser = admin_client.get(PAGE, {"q": "chrome", "by": "browser"}).text
    assert "Chrome 120" in by_browser and "203.0.113.5" not in by_browser


def test_page_is_paged(backend, ada, boss, monkeypatch):
    for agent in (FIREFOX, CHROME_MAC):
        device(ada, agent)
    admin_client = device(boss)
    monkeypatch.setattr(SiteSessionsAdmin, "page_size", 2)
    first = admin_client.get(PAGE)
    assert len(first.context["rows"]) == 2 and first.context["next_url"]
    second = admin_client.get(PAGE + first.context["next_url"])
    assert len(second.context["rows"]) == 1
    seen = {r.session.id for r in first.context["rows"] + second.context["rows"]}
    assert len(seen) == 3
