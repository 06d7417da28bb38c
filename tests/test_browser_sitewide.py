"""The admin's site-wide sessions page in a real headless Chromium: search and bulk revoke."""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_browser import (
    PHONE,
    TABLET,
    assert_accessible,
    assert_narrow_layout,
    chromium,  # noqa: F401 - the fixture
    is_signed_in,
    new_page,
    people,  # noqa: F401 - the fixture
    shots,  # noqa: F401 - the fixture
    sign_in,
)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.backends("redis")]

PAGE = "/admin/django_charon_sessions/sitesession/"


@pytest.fixture(autouse=True)
def _site_activity(backend):
    with backend.settings(SITE_ACTIVITY=True):
        yield


def test_admin_finds_and_bulk_revokes_sessions_site_wide(
    live_server,
    backend,
    chromium,  # noqa: F811 - the fixture imported above
    people,  # noqa: F811
    shots,  # noqa: F811
    django_user_model,
):
    base = live_server.url
    django_user_model.objects.create_user("bob", "bob@example.com", "pw-for-browser-tests-1")
    ada_phone, ada_tablet, bob_phone = (
        new_page(chromium, agent=PHONE),
        new_page(chromium, agent=TABLET),
        new_page(chromium, agent=PHONE),
    )
    sign_in(ada_phone, base, "ada")
    sign_in(ada_tablet, base, "ada")
    sign_in(bob_phone, base, "bob")

    admin_page = new_page(chromium)
    sign_in(admin_page, base, "boss", "/admin/login/")
    admin_page.goto(base + "/admin/")
    with admin_page.expect_navigation():
        admin_page.locator(f'a[href="{PAGE}"]').first.click()
    online = admin_page.locator("#charon-online").inner_text()
    assert "5 minutes" in online
    table = admin_page.locator("#charon-sessions")
    assert table.locator("tbody tr").count() == 4  # three people's devices and the admin's
    assert_accessible(admin_page)
    # The picture for the README: wide enough for every column without scrolling.
    admin_page.set_viewport_size({"width": 1440, "height": 720})
    shots(admin_page, "admin-sitewide-light")
    admin_page.set_viewport_size({"width": 1100, "height": 720})

    # Search by browser within the last hour: the two Firefox phones.
    admin_page.get_by_label("Search", exact=True).fill("firefox")
    admin_page.get_by_label("by").select_option("browser")
    admin_page.get_by_label("seen within").select_option("hour")
    with admin_page.expect_navigation():
        admin_page.get_by_role("button", name="Search").click()
    assert "seen within the last hour" in admin_page.locator("#charon-bound").inner_text()
    rows = admin_page.locator("#charon-sessions tbody tr")
    assert rows.count() == 2
    assert {rows.nth(n).locator("th").inner_text() for n in range(2)} == {"ada", "bob"}

    # Pick both and revoke them, after the confirmation.
    for n in range(2):
        rows.nth(n).get_by_role("checkbox").check()
    with admin_page.expect_navigation():
        admin_page.get_by_role("button", name="Revoke selected sessions").click()
    assert "Revoke 2 sessions?" in admin_page.content()
    assert_accessible(admin_page)
    assert is_signed_in(ada_phone, base)  # nothing ended before confirming
    with admin_page.expect_navigation():
        admin_page.get_by_role("button", name="Yes, revoke them").click()
    assert "Revoked 2 sessions." in admin_page.content()

    assert not is_signed_in(ada_phone, base)
    assert not is_signed_in(bob_phone, base)
    assert is_signed_in(ada_tablet, base)
    assert is_signed_in(admin_page, base)

    # By username: all of ada's live sessions, the tablet only now.
    admin_page.goto(base + PAGE + "?q=ada&by=user")
    assert admin_page.locator("#charon-sessions tbody tr").count() == 1
    assert "iOS" in admin_page.locator("#charon-sessions").inner_text()
    dark: Any = new_page(chromium, "dark", width=1440)
    sign_in(dark, base, "boss", "/admin/login/")
    dark.goto(base + PAGE)
    assert_accessible(dark)
    shots(dark, "admin-sitewide-dark")


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [360, 390])
def test_the_page_on_narrow_screens(
    live_server,
    backend,
    chromium,  # noqa: F811
    people,  # noqa: F811
    width,
    scheme,
):
    base = live_server.url
    sign_in(new_page(chromium, agent=TABLET), base, "ada")
    admin = new_page(chromium, scheme, width=width, agent=PHONE)
    sign_in(admin, base, "boss", "/admin/login/")
    admin.goto(base + PAGE)
    assert admin.locator("#charon-sessions tbody tr").count() == 2  # ada's tablet, this phone
    assert_narrow_layout(admin)
    assert_accessible(admin)
