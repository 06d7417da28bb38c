"""End to end in a real headless Chromium against the test project on loopback.

The test project is served by pytest-django's live server (a real HTTP
server in a thread of this process), its sessions in the real redis-server
the suite starts. Each person is a separate browser context, so cookies are
as separate as on two machines.

Set CHARON_SCREENSHOTS to a directory (``docs/images``) to keep the
screenshots the README shows.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from django.contrib.auth import get_user_model

from tests.browser import axe_violations, launch, tab_order

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.backends("redis")]

PASSWORD = "pw-for-browser-tests-1"
# Browsers the people use (the user agent is all the server sees of them).
LAPTOP = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
PHONE = "Mozilla/5.0 (Android 14; Mobile; rv:132.0) Gecko/132.0 Firefox/132.0"
TABLET = (
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("playwright is not installed (CI=true: the browser tests must run)")
        pytest.skip("playwright is not installed")
    # Playwright's sync API keeps an event loop in this thread, which Django's
    # ORM would take for async code; the tests' own ORM calls are plain sync.
    before = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as p:
            browser = launch(p)
            yield browser
            browser.close()
    finally:
        if before is None:
            del os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"]
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = before


@pytest.fixture
def people(django_user_model) -> dict[str, Any]:
    return {
        "ada": django_user_model.objects.create_user("ada", password=PASSWORD),
        "boss": django_user_model.objects.create_superuser("boss", "b@example.com", PASSWORD),
    }


@pytest.fixture
def shots(tmp_path: Path) -> Any:
    keep = os.environ.get("CHARON_SCREENSHOTS")

    def shoot(page: Any, name: str) -> Path:
        path = tmp_path / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 5000  # a real picture, not a blank page
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(keep) / path.name)
        return path

    return shoot


def new_page(chromium: Any, scheme: str = "light", width: int = 1100, agent: str = LAPTOP) -> Any:
    context = chromium.new_context(
        color_scheme=scheme, viewport={"width": width, "height": 720}, user_agent=agent
    )
    context.set_default_timeout(15_000)
    return context.new_page()


def sign_in(page: Any, base: str, username: str, path: str = "/accounts/login/") -> None:
    page.goto(base + path)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    with page.expect_navigation():
        page.keyboard.press("Enter")  # submits the form, as a keyboard user would


def is_signed_in(page: Any, base: str) -> bool:
    page.goto(base + "/")
    return "Signed in as" in page.content()


def admin_sessions_path(user: Any) -> str:
    opts = get_user_model()._meta
    return f"/admin/{opts.app_label}/{opts.model_name}/{user.pk}/sessions/"


def assert_accessible(page: Any) -> None:
    violations = axe_violations(page)
    assert violations == [], violations


def assert_fits(page: Any) -> None:
    overflow = page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"the page is {overflow}px wider than the screen"


def test_admin_logs_a_user_out_everywhere(live_server, backend, chromium, people, shots):
    base = live_server.url
    user_page = new_page(chromium)
    sign_in(user_page, base, "ada")
    assert is_signed_in(user_page, base)
    phone = new_page(chromium, agent=PHONE)
    sign_in(phone, base, "ada")

    admin_page = new_page(chromium)
    sign_in(admin_page, base, "boss", "/admin/login/")
    opts = get_user_model()._meta
    admin_page.goto(f"{base}/admin/{opts.app_label}/{opts.model_name}/")
    with admin_page.expect_navigation():
        admin_page.get_by_role("link", name="ada", exact=True).click()
    with admin_page.expect_navigation():
        admin_page.locator(".object-tools").get_by_role("link", name="Sessions").click()
    assert admin_page.url == base + admin_sessions_path(people["ada"])
    table = admin_page.locator("#charon-sessions")
    assert table.locator("tbody tr").count() == 2
    assert "127.0.0.1" in table.inner_text()
    assert "Live sessions of ada" in table.inner_text()
    assert_accessible(admin_page)
    shots(admin_page, "admin-sessions-light")

    dark = new_page(chromium, "dark")
    sign_in(dark, base, "boss", "/admin/login/")
    dark.goto(base + admin_sessions_path(people["ada"]))
    assert_accessible(dark)
    shots(dark, "admin-sessions-dark")
    narrow = new_page(chromium, width=390)
    sign_in(narrow, base, "boss", "/admin/login/")
    narrow.goto(base + admin_sessions_path(people["ada"]))
    assert_fits(narrow)

    # Every control is reachable with Tab, in reading order.
    order = [name for name in tab_order(admin_page) if name]
    revoke = [n for n in order if n.startswith("Revoke the session of")]
    assert len(revoke) == 2
    assert order.index("Log out everywhere") > order.index(revoke[-1])

    # Keyboard only: open the confirmation, then confirm.
    admin_page.get_by_role("link", name="Log out everywhere").focus()
    admin_page.keyboard.press("Enter")
    admin_page.wait_for_url("**/sessions/end/")
    assert "Log ada out everywhere?" in admin_page.content()
    assert_accessible(admin_page)
    assert is_signed_in(user_page, base)  # nothing ended before confirming
    admin_page.get_by_role("button", name="Yes, log out everywhere").focus()
    admin_page.keyboard.press("Enter")
    admin_page.wait_for_url("**/sessions/")
    assert "Logged out everywhere: ended 2 sessions." in admin_page.content()

    assert not is_signed_in(user_page, base)
    assert not is_signed_in(phone, base)
    assert is_signed_in(admin_page, base)


def test_user_signs_out_another_device(live_server, backend, chromium, people, shots):
    base = live_server.url
    laptop, phone = new_page(chromium), new_page(chromium, agent=PHONE)
    sign_in(laptop, base, "ada")
    sign_in(phone, base, "ada")
    laptop.goto(base + "/accounts/sessions/")
    rows = laptop.locator("#charon-sessions tbody tr")
    assert rows.count() == 2
    assert rows.filter(has_text="This device").count() == 1
    assert_accessible(laptop)
    shots(laptop, "own-sessions-light")
    dark = new_page(chromium, "dark", agent=TABLET)
    sign_in(dark, base, "ada")
    dark.goto(base + "/accounts/sessions/")
    assert_accessible(dark)
    shots(dark, "own-sessions-dark")
    narrow = new_page(chromium, width=390, agent=PHONE)
    sign_in(narrow, base, "ada")
    narrow.goto(base + "/accounts/sessions/")
    assert_fits(narrow)

    # The laptop signs out the tablet, then every other device.
    laptop.goto(base + "/accounts/sessions/")
    assert laptop.locator("#charon-sessions tbody button").count() == 3
    with laptop.expect_navigation():
        laptop.get_by_role("button", name="Sign out Mobile Safari").click()
    assert "Signed out Mobile Safari " in laptop.content()
    assert not is_signed_in(dark, base)
    assert is_signed_in(phone, base)
    with laptop.expect_navigation():
        laptop.get_by_role("button", name="Sign out all other devices").click()
    assert "Signed out 2 other devices." in laptop.content()
    assert not is_signed_in(phone, base)
    assert not is_signed_in(narrow, base)
    assert is_signed_in(laptop, base)


def test_user_confirms_password_before_ending_a_device(
    live_server, backend, chromium, people, settings
):
    settings.CHARON_SESSIONS = {**settings.CHARON_SESSIONS, "REAUTHENTICATE_AFTER": 0}
    base = live_server.url
    laptop, phone = new_page(chromium), new_page(chromium, agent=PHONE)
    sign_in(laptop, base, "ada")
    sign_in(phone, base, "ada")
    laptop.goto(base + "/accounts/sessions/")
    assert_accessible(laptop)
    laptop.get_by_label("Your password").fill("wrong-password")
    with laptop.expect_navigation():
        laptop.get_by_role("button", name="Sign out Firefox").click()
    assert "That is not your password." in laptop.content()
    assert_accessible(laptop)
    assert is_signed_in(phone, base)

    laptop.goto(base + "/accounts/sessions/")
    laptop.get_by_label("Your password").fill(PASSWORD)
    with laptop.expect_navigation():
        laptop.get_by_role("button", name="Sign out Firefox").click()
    assert "Signed out Firefox " in laptop.content()
    assert not is_signed_in(phone, base)


def test_the_accessibility_audit_can_fail(chromium):
    page = new_page(chromium)
    page.set_content(
        '<html lang="en"><title>t</title><main><img src="data:,">'
        '<input type="text"><button></button></main></html>'
    )
    found = {v["id"] for v in axe_violations(page)}
    assert {"image-alt", "label", "button-name"} <= found


# -- narrow screens ------------------------------------------------------------------

LAYOUT = """() => {
    const vw = window.innerWidth;
    const outside = [...document.querySelectorAll(
        "button, a.button, .deletelink, input[type=submit]")]
        .map(el => [el.innerText || el.value, el.getBoundingClientRect()])
        .filter(([, r]) => r.width > 0 && (r.left < 0 || r.right > vw + 0.5 || r.top < 0))
        .map(([name, r]) => `${name.trim()} at ${Math.round(r.left)}..${Math.round(r.right)}`);
    const tall = [...document.querySelectorAll("#charon-sessions td time")].map(t => {
        const cell = t.closest("td");
        const cs = getComputedStyle(cell);
        const inner = cell.getBoundingClientRect().height
            - parseFloat(cs.paddingTop) - parseFloat(cs.paddingBottom);
        return inner / parseFloat(cs.lineHeight);
    }).filter(lines => !(lines <= 2.05));
    return {scroll: document.documentElement.scrollWidth, width: vw, outside, tall};
}"""


def assert_narrow_layout(page: Any) -> None:
    """Nothing wider than the screen, every button on it, dates on at most two lines."""
    found = page.evaluate(LAYOUT)
    assert found["scroll"] <= found["width"], f"the page is {found['scroll']}px wide"
    assert found["outside"] == [], f"buttons off the screen: {found['outside']}"
    assert found["tall"] == [], f"date cells taller than two lines: {found['tall']}"
    assert page.locator("#charon-sessions td time").count() >= 2


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [360, 390])
def test_narrow_screens(live_server, backend, chromium, people, width, scheme, tmp_path):
    base = live_server.url
    for agent in (LAPTOP, TABLET):
        sign_in(new_page(chromium, agent=agent), base, "ada")
    phone = new_page(chromium, scheme, width=width, agent=PHONE)
    sign_in(phone, base, "ada")
    phone.goto(base + "/accounts/sessions/")
    assert_narrow_layout(phone)
    assert_accessible(phone)
    phone.screenshot(path=str(tmp_path / "own.png"), full_page=True)

    admin = new_page(chromium, scheme, width=width, agent=PHONE)
    sign_in(admin, base, "boss", "/admin/login/")
    admin.goto(base + admin_sessions_path(people["ada"]))
    assert_narrow_layout(admin)
    assert_accessible(admin)
    admin.screenshot(path=str(tmp_path / "admin.png"), full_page=True)


def test_the_narrow_layout_check_can_fail(chromium):
    page = new_page(chromium, width=360)
    page.set_content(
        '<html lang="en"><title>t</title><main><table id="charon-sessions"><tr>'
        '<td style="width:40px;line-height:20px"><time>three days ago</time><br>'
        "Dec. 2, 2026, 10:50 a.m.</td></tr></table>"
        '<button style="margin-left:340px">Sign out</button></main></html>'
    )
    with pytest.raises(AssertionError):
        assert_narrow_layout(page)
    found = page.evaluate(LAYOUT)
    assert found["scroll"] > 360 and found["outside"] and found["tall"]
