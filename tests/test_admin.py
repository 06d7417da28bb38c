"""The admin's sessions pages and the users' own page, through Django's test client."""

from __future__ import annotations

import time

import pytest
from django.contrib import admin
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.contrib.auth.models import Permission
from django.contrib.contenttypes.models import ContentType
from django.test import Client, override_settings
from django.urls import reverse

from django_charon_sessions import api
from django_charon_sessions.admin import SessionsAdminMixin, adopt_user_admin
from django_charon_sessions.checks import check_admin
from django_charon_sessions.keyspace import member_of
from django_charon_sessions.receivers import AUTH_TIME_KEY
from django_charon_sessions.wording import exact_time
from tests.devices import CHROME_MAC, FIREFOX, PASSWORD, csrf_field, device, key_of, signed_in

pytestmark = [pytest.mark.django_db, pytest.mark.backends("fake", "redis")]


def opts():
    return get_user_model()._meta


def admin_url(name: str, *args: object) -> str:
    return reverse(f"admin:{opts().app_label}_{opts().model_name}_{name}", args=args)


def sessions_url(user) -> str:
    return admin_url("sessions", user.pk)


def end_url(user) -> str:
    return admin_url("sessions_end", user.pk)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


@pytest.fixture
def ada(django_user_model):
    return django_user_model.objects.create_user("ada", password=PASSWORD)


@pytest.fixture
def boss(django_user_model):
    return django_user_model.objects.create_superuser("boss", "boss@example.com", PASSWORD)


def staff(django_user_model, name: str, *perms: str):
    user = django_user_model.objects.create_user(name, password=PASSWORD, is_staff=True)
    ct = ContentType.objects.get_for_model(django_user_model)
    for action in perms:
        user.user_permissions.add(
            Permission.objects.get(content_type=ct, codename=f"{action}_{opts().model_name}")
        )
    return user


def ids(user) -> set[str]:
    return {s.id for s in api.list_sessions(user)}


# -- the sessions page -----------------------------------------------------------


def test_sessions_page_lists_the_users_devices(backend, ada, boss):
    laptop, phone = device(ada), device(ada, CHROME_MAC, "198.51.100.7")
    admin_client = device(boss)
    response = admin_client.get(sessions_url(ada))
    assert response.status_code == 200
    page = response.text
    assert "Firefox 130 on Ubuntu" in page or "Firefox 130 on Linux" in page
    assert "Chrome 120 on Mac OS X" in page
    assert "198.51.100.7" in page and "192.0.2.10" in page
    for client in (laptop, phone):
        public = member_of(key_of(client))
        assert f"{end_url(ada)}?session={public}" in page
        assert key_of(client) not in page  # only hashes reach the page
    assert "Log out everywhere" in page
    assert "Your current session" not in page  # the admin's own is not among ada's
    assert 'class="breadcrumbs"' in page and "ada" in page


def test_own_current_session_is_marked_and_not_revocable(backend, boss):
    admin_client, other = device(boss), device(boss, CHROME_MAC)
    page = admin_client.get(sessions_url(boss)).text
    assert "Your current session" in page
    assert f"?session={member_of(key_of(admin_client))}" not in page
    assert f"?session={member_of(key_of(other))}" in page


def test_change_form_links_to_the_sessions_page(backend, ada, boss):
    page = device(boss).get(admin_url("change", ada.pk)).text
    assert f'href="{sessions_url(ada)}"' in page
    assert 'name="username"' in page  # still the user admin's own form around the link


def test_unknown_user_is_404(backend, boss):
    client = device(boss)
    missing = (
        "00000000-0000-0000-0000-000000000000"
        if opts().pk.get_internal_type() == ("UUIDField")
        else "999999"
    )
    assert client.get(admin_url("sessions", missing)).status_code == 404
    assert client.get(admin_url("sessions", "not a key")).status_code == 404


# -- permissions -----------------------------------------------------------------


def test_staff_without_permission_gets_403(backend, django_user_model, ada):
    device(ada)
    nobody = device(staff(django_user_model, "nobody"))
    assert nobody.get(sessions_url(ada)).status_code == 403
    assert nobody.get(end_url(ada)).status_code == 403
    assert nobody.post(end_url(ada)).status_code == 403
    assert len(ids(ada)) == 1


def test_view_permission_sees_but_cannot_end(backend, django_user_model, ada):
    laptop = device(ada)
    viewer = device(staff(django_user_model, "viewer", "view"))
    response = viewer.get(sessions_url(ada))
    assert response.status_code == 200
    assert member_of(key_of(laptop)) not in response.text  # no revoke links
    assert "Log out everywhere" not in response.text
    assert viewer.post(end_url(ada)).status_code == 403
    assert viewer.post(end_url(ada), {"session": member_of(key_of(laptop))}).status_code == 403
    assert signed_in(laptop)


def test_change_permission_may_end(backend, django_user_model, ada):
    laptop = device(ada)
    changer = device(staff(django_user_model, "changer", "change"))
    assert changer.post(end_url(ada)).status_code == 302
    assert not signed_in(laptop)


def test_anonymous_is_sent_to_the_admin_login(backend, ada):
    response = Client().get(sessions_url(ada))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_csrf_is_required(backend, ada, boss):
    laptop = device(ada)
    admin_client = device(boss, csrf=True)
    assert admin_client.post(end_url(ada)).status_code == 403
    assert signed_in(laptop)
    response = admin_client.post(end_url(ada), csrf_field(admin_client))
    assert response.status_code == 302
    assert not signed_in(laptop)


# -- confirmation, log, messages -------------------------------------------------


def test_log_out_everywhere_confirms_then_ends_logs_and_says_how_many(backend, ada, boss):
    devices = [device(ada), device(ada, CHROME_MAC), device(ada)]
    admin_client = device(boss)
    confirm = admin_client.get(end_url(ada))
    assert confirm.status_code == 200
    assert "Log ada out everywhere?" in confirm.text
    assert "all 3 of their live sessions" in confirm.text
    assert 'method="post"' in confirm.text and "csrfmiddlewaretoken" in confirm.text
    assert all(signed_in(d) for d in devices)  # GET ended nothing

    response = admin_client.post(end_url(ada), follow=True)
    assert response.redirect_chain[-1][0] == sessions_url(ada)
    assert messages_of(response) == ["Logged out everywhere: ended 3 sessions."]
    assert "ada has no live sessions." in response.text
    assert not any(signed_in(d) for d in devices)
    entry = LogEntry.objects.get(object_id=str(ada.pk))
    assert entry.action_flag == CHANGE
    assert entry.user_id == boss.pk
    assert entry.get_change_message() == "Logged out everywhere: ended 3 sessions."


def test_revoke_one_confirms_then_ends_only_that_one(backend, ada, boss):
    laptop, phone = device(ada), device(ada, CHROME_MAC)
    target = member_of(key_of(phone))
    admin_client = device(boss)
    confirm = admin_client.get(end_url(ada), {"session": target})
    assert confirm.status_code == 200
    assert "Revoke the session of ada (Chrome 120 on Mac OS X 10.15)?" in confirm.text
    assert f'name="session" value="{target}"' in confirm.text
    assert signed_in(phone)

    created = next(s.created for s in api.list_sessions(ada) if s.id == target)
    response = admin_client.post(end_url(ada), {"session": target}, follow=True)
    said = (
        "Revoked the session of Chrome 120 on Mac OS X 10.15, IP 192.0.2.10, signed in "
        f"{exact_time(created)}, id {target[:8]}."
    )
    assert messages_of(response) == [said]
    assert said.endswith(" UTC, id " + target[:8] + ".")  # the zone is named
    assert key_of(phone) not in said
    assert not signed_in(phone)
    assert signed_in(laptop)
    assert LogEntry.objects.get(object_id=str(ada.pk)).change_message == said


def test_revoke_cannot_reach_another_users_session(backend, ada, boss, django_user_model):
    bob = django_user_model.objects.create_user("bob", password=PASSWORD)
    bobs = device(bob)
    device(ada)
    admin_client = device(boss)
    response = admin_client.post(end_url(ada), {"session": member_of(key_of(bobs))}, follow=True)
    assert messages_of(response) == ["That session had already ended."]
    assert signed_in(bobs)
    assert admin_client.post(end_url(ada), {"session": "../../etc"}).status_code == 404


def test_admin_logging_themselves_out_everywhere_stays_here(backend, boss):
    here, elsewhere = device(boss), device(boss, CHROME_MAC)
    confirm = here.get(end_url(boss))
    text = " ".join(confirm.text.split())
    # The count shown is the count that ends: the session in use is not one of them.
    assert "This ends your 1 other live session at once" in text
    assert "stays signed in" in text
    assert "all 2" not in text and "their" not in text
    response = here.post(end_url(boss), follow=True)
    assert messages_of(response) == ["Logged out everywhere: ended 1 session."]
    assert signed_in(here)
    assert not signed_in(elsewhere)


def test_logging_yourself_out_everywhere_with_no_other_session_says_so(backend, boss):
    text = " ".join(device(boss).get(end_url(boss)).text.split())
    assert "You have no other live session: there is nothing to end." in text
    assert "0 other" not in text


def test_the_changelist_action_counts_what_ends_for_the_admin_themselves(backend, boss, ada):
    here, elsewhere, other = device(boss), device(boss, CHROME_MAC), device(boss)
    adas = device(ada)
    confirm = action_post(here, [boss, ada])
    text = " ".join(confirm.text.split())
    assert "End the sessions listed below of the 2 selected users?" in text
    assert "End every session" not in text
    assert "boss (you): 2 other live sessions end" in text
    assert "ada: 1 live session" in text
    done = action_post(here, [boss, ada], post="yes")
    assert messages_of(done) == ["Ended 3 sessions of 2 selected users."]
    assert signed_in(here)
    assert not any(signed_in(d) for d in (elsewhere, other, adas))


def test_the_changelist_action_page_has_no_none_subtitle(backend, ada, boss):
    confirm = action_post(device(boss), [ada])
    assert confirm.status_code == 200
    assert ">None<" not in confirm.text
    assert confirm.context["subtitle"] is None


def test_exact_times_name_the_time_zone(backend, ada, boss, settings):
    laptop = device(ada)
    settings.TIME_ZONE = "Europe/Paris"
    created = api.list_sessions(ada)[0].created
    page = device(boss).get(sessions_url(ada)).text
    assert exact_time(created).endswith((" CET", " CEST"))
    assert exact_time(created) in page
    assert f"{exact_time(created)}" in laptop.get("/accounts/sessions/").text


def test_admin_cannot_revoke_their_own_current_session(backend, boss):
    here = device(boss)
    own = member_of(key_of(here))
    response = here.post(end_url(boss), {"session": own}, follow=True)
    assert messages_of(response) == ["This is your current session: use “Log out”."]
    assert signed_in(here)
    assert not LogEntry.objects.exists()


def test_revoking_an_ended_session_logs_nothing(backend, ada, boss):
    laptop = device(ada)
    target = member_of(key_of(laptop))
    api.end_session(ada, target)
    device(boss).post(end_url(ada), {"session": target})
    assert not LogEntry.objects.exists()


# -- the changelist action -------------------------------------------------------


def action_post(client: Client, users, **extra: str):
    data = {"action": "end_sessions_of_selected", "_selected_action": [u.pk for u in users]}
    return client.post(admin_url("changelist"), {**data, **extra}, follow=True)


def test_changelist_action_confirms_then_logs_out_every_selected_user(
    backend, ada, boss, django_user_model
):
    bob = django_user_model.objects.create_user("bob", password=PASSWORD)
    carl = django_user_model.objects.create_user("carl", password=PASSWORD)
    ada_devices, bob_devices = [device(ada), device(ada)], [device(bob)]
    carls = device(carl)
    admin_client = device(boss)
    assert "Log out selected users everywhere" in admin_client.get(admin_url("changelist")).text

    confirm = action_post(admin_client, [ada, bob])
    assert "End every session of the 2 selected users?" in confirm.text
    assert "ada: 2 live sessions" in confirm.text and "bob: 1 live session" in confirm.text
    assert all(signed_in(d) for d in ada_devices + bob_devices)

    done = action_post(admin_client, [ada, bob], post="yes")
    assert messages_of(done) == ["Ended 3 sessions of 2 selected users."]
    assert not any(signed_in(d) for d in ada_devices + bob_devices)
    assert signed_in(carls)
    messages = sorted(LogEntry.objects.values_list("object_repr", "change_message"))
    assert messages == [
        ("ada", "Logged out everywhere: ended 2 sessions."),
        ("bob", "Logged out everywhere: ended 1 session."),
    ]


def test_changelist_action_counts_in_two_plurals(backend, ada, boss):
    for _ in range(3):
        device(ada)
    done = action_post(device(boss), [ada], post="yes")
    assert messages_of(done) == ["Ended 3 sessions of 1 selected user."]


def test_changelist_action_skips_users_the_admin_may_not_log_out(
    backend, ada, boss, django_user_model, monkeypatch
):
    bob = django_user_model.objects.create_user("bob", password=PASSWORD)
    adas, bobs = device(ada), device(bob)
    model_admin = admin.site._registry[get_user_model()]
    monkeypatch.setattr(
        model_admin,
        "has_end_sessions_permission",
        lambda request, obj=None: obj is None or obj.get_username() != "bob",
    )
    admin_client = device(boss)
    confirm = action_post(admin_client, [ada, bob])
    assert "1 selected user is left alone" in confirm.text
    assert "bob:" not in confirm.text
    done = action_post(admin_client, [ada, bob], post="yes")
    assert messages_of(done) == [
        "Ended 1 session of 1 selected user. Skipped 1 user you may not log out."
    ]
    assert not signed_in(adas)
    assert signed_in(bobs)


def test_changelist_action_needs_the_change_permission(backend, ada, django_user_model):
    laptop = device(ada)
    viewer = device(staff(django_user_model, "viewer", "view"))
    page = viewer.get(admin_url("changelist")).text
    assert "Log out selected users everywhere" not in page
    action_post(viewer, [ada], post="yes")
    assert signed_in(laptop)


# -- adopting the site's user admin ----------------------------------------------


def test_the_registered_user_admin_was_adopted_keeping_its_class():
    registered = admin.site._registry[get_user_model()]
    assert isinstance(registered, SessionsAdminMixin)
    assert isinstance(registered, UserAdmin)
    base = type(registered).__mro__[2]
    assert type(registered).__name__ == base.__name__  # the site's own admin, extended


def test_adopt_another_site_and_custom_admin():
    site = admin.AdminSite(name="other")

    class Custom(UserAdmin):
        list_display = ("username", "email")

    site.register(get_user_model(), Custom)
    assert adopt_user_admin(site) is True
    adopted = site._registry[get_user_model()]
    assert isinstance(adopted, SessionsAdminMixin) and isinstance(adopted, Custom)
    assert adopted.list_display == ("username", "email")
    assert "end_sessions_of_selected" in adopted.actions
    assert adopt_user_admin(site) is True  # idempotent
    assert site._registry[get_user_model()] is adopted
    assert adopt_user_admin(admin.AdminSite(name="empty")) is False


def test_check_warns_when_the_user_admin_lacks_the_pages():
    model = get_user_model()
    original = admin.site._registry[model]
    admin.site._registry[model] = UserAdmin(model, admin.site)
    try:
        (warning,) = check_admin()
        assert warning.id == "django_charon_sessions.W006"
        assert "(django.contrib.auth.admin.UserAdmin)" in warning.msg
        assert "SessionsAdminMixin first" in warning.hint
        with override_settings(CHARON_SESSIONS={"ADMIN": False}):
            assert check_admin() == []
    finally:
        admin.site._registry[model] = original
    assert check_admin() == []


# -- the users' own page ---------------------------------------------------------

MY_SESSIONS = "/accounts/sessions/"


def test_own_page_marks_this_device_and_signs_out_another(backend, ada):
    laptop, phone = device(ada, csrf=True), device(ada, CHROME_MAC)
    page = laptop.get(MY_SESSIONS).text
    assert "This device" in page
    assert f'value="{member_of(key_of(phone))}"' in page
    assert f'value="{member_of(key_of(laptop))}"' not in page
    response = laptop.post(
        MY_SESSIONS, {"end": member_of(key_of(phone)), **csrf_field(laptop)}, follow=True
    )
    created = next(s.created for s in api.list_sessions(ada) if not s.is_current)
    assert messages_of(response) == [
        f"Signed out Chrome 120 on Mac OS X 10.15, IP 192.0.2.10, signed in "
        f"{exact_time(created)}, id {member_of(key_of(phone))[:8]}."
    ]
    assert not signed_in(phone)
    assert signed_in(laptop)


def test_own_page_signs_out_all_other_devices(backend, ada):
    laptop = device(ada)
    others = [device(ada, CHROME_MAC), device(ada)]
    response = laptop.post(MY_SESSIONS, {"end": "others"}, follow=True)
    assert messages_of(response) == ["Signed out 2 other devices."]
    assert not any(signed_in(d) for d in others)
    assert signed_in(laptop)
    assert "No other device is signed in." in response.text


def test_own_page_cannot_end_someone_elses_session(backend, ada, django_user_model):
    bob = django_user_model.objects.create_user("bob", password=PASSWORD)
    bobs = device(bob)
    response = device(ada).post(MY_SESSIONS, {"end": member_of(key_of(bobs))}, follow=True)
    assert messages_of(response) == ["That device was already signed out."]
    assert signed_in(bobs)


def test_own_page_refuses_bad_input_and_needs_csrf_and_sign_in(backend, ada):
    assert Client().get(MY_SESSIONS)["Location"].startswith("/accounts/login/")
    laptop = device(ada, csrf=True)
    phone = device(ada)
    target = {"end": member_of(key_of(phone))}
    assert laptop.post(MY_SESSIONS, target).status_code == 403  # no CSRF token
    assert laptop.post(MY_SESSIONS, {"end": "x", **csrf_field(laptop)}).status_code == 400
    assert laptop.post(MY_SESSIONS, csrf_field(laptop)).status_code == 400
    assert signed_in(phone)


def test_own_page_asks_for_the_password_after_a_while(backend, ada):
    laptop, phone = device(ada), device(ada, CHROME_MAC)
    target = member_of(key_of(phone))
    assert 'type="password"' not in laptop.get(MY_SESSIONS).text  # just signed in
    # The sign-in happened two hours ago.
    session = laptop.session
    session[AUTH_TIME_KEY] = int(time.time()) - 7200
    session.save()
    page = laptop.get(MY_SESSIONS).text
    assert 'type="password"' in page and 'autocomplete="current-password"' in page

    missing = laptop.post(MY_SESSIONS, {"end": target})
    assert missing.status_code == 200 and "This field is required." in missing.text
    wrong = laptop.post(MY_SESSIONS, {"end": target, "password": "not-it"})
    assert "That is not your password." in wrong.text
    assert signed_in(phone)

    right = laptop.post(MY_SESSIONS, {"end": target, "password": PASSWORD}, follow=True)
    assert messages_of(right)[0].startswith("Signed out Chrome 120 on Mac OS X 10.15, IP ")
    assert not signed_in(phone)
    assert 'type="password"' not in right.text  # confirmed just now


@pytest.mark.parametrize(("after", "asks"), [(0, True), (None, False), (86400, False)])
def test_reauthenticate_after_setting(backend, ada, after, asks):
    laptop = device(ada)
    session = laptop.session
    session[AUTH_TIME_KEY] = int(time.time()) - 7200  # signed in two hours ago
    session.save()
    with backend.settings(REAUTHENTICATE_AFTER=after):
        assert ('type="password"' in laptop.get(MY_SESSIONS).text) is asks


def test_a_session_from_before_the_app_was_installed_asks(backend, ada):
    laptop = device(ada)
    session = laptop.session
    del session[AUTH_TIME_KEY]
    session.save()
    assert 'type="password"' in laptop.get(MY_SESSIONS).text


class FastPBKDF2PasswordHasher(PBKDF2PasswordHasher):
    iterations = 2


def test_confirming_a_password_whose_hash_is_upgraded_keeps_this_device(backend, ada, settings):
    # ada's password is stored with the MD5 hasher of the tests; once PBKDF2
    # is preferred, authenticate() rewrites the hash, which changes the
    # session hash every session of hers carries.
    laptop, phone, tablet = device(ada), device(ada, CHROME_MAC), device(ada)
    settings.PASSWORD_HASHERS = [
        "tests.test_admin.FastPBKDF2PasswordHasher",
        "django.contrib.auth.hashers.MD5PasswordHasher",
    ]
    with backend.settings(REAUTHENTICATE_AFTER=0):
        response = laptop.post(
            MY_SESSIONS, {"end": member_of(key_of(phone)), "password": PASSWORD}, follow=True
        )
    assert messages_of(response)[0].startswith("Signed out Chrome 120 on Mac OS X 10.15, IP ")
    ada.refresh_from_db()
    assert ada.password.startswith("pbkdf2_sha256$")
    assert signed_in(laptop)
    assert not signed_in(phone)
    assert not signed_in(tablet)  # as after any password hash change


def test_users_without_a_password_sign_in_again(backend, django_user_model):
    sso = django_user_model.objects.create_user("sso")  # no usable password
    assert not sso.has_usable_password()
    laptop, phone = Client(), Client()
    laptop.force_login(sso)
    phone.force_login(sso)
    with backend.settings(REAUTHENTICATE_AFTER=0):
        page = laptop.get(MY_SESSIONS).text
        assert 'type="password"' not in page
        assert "Sign in again" in page and "/accounts/login/?next=" in page
        response = laptop.post(MY_SESSIONS, {"end": member_of(key_of(phone))})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=")
    assert signed_in(phone)


@pytest.mark.parametrize(
    ("login_url", "expected"),
    [
        ("/accounts/login/", "/accounts/login/?next=/accounts/sessions/"),
        ("login", "/accounts/login/?next=/accounts/sessions/"),  # a URL name
        ("/accounts/login/?theme=dark", "/accounts/login/?theme=dark&next=/accounts/sessions/"),
    ],
)
def test_sign_in_again_goes_to_login_url_and_back(backend, settings, login_url, expected):
    sso = get_user_model().objects.create_user("sso")
    laptop = Client()
    laptop.force_login(sso)
    settings.LOGIN_URL = login_url
    with backend.settings(REAUTHENTICATE_AFTER=0):
        page = laptop.get(MY_SESSIONS).text
        response = laptop.post(MY_SESSIONS, {"end": "others"})
    assert f'href="{expected.replace("&", "&amp;")}"' in page
    assert response.status_code == 302
    assert response["Location"] == expected


def test_own_page_lists_facts(backend, ada):
    laptop = device(ada, FIREFOX, "203.0.113.9")
    page = laptop.get(MY_SESSIONS).text
    assert "203.0.113.9" in page
    assert "Firefox 130" in page


def test_urls_quote_keys_as_the_admin_does():
    from types import SimpleNamespace

    from django.contrib.admin.utils import unquote
    from django.urls import resolve

    model_admin = admin.site._registry[get_user_model()]
    url = model_admin.sessions_url(SimpleNamespace(pk="a/b_c"))
    assert "/a_2Fb_5Fc/sessions/" in url
    assert unquote(resolve(url).kwargs["object_id"]) == "a/b_c"
