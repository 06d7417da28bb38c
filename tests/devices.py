"""Browsers signed in through the real login view, for the tests."""

from __future__ import annotations

from django.conf import settings
from django.test import Client

PASSWORD = "pw-for-tests-1234"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:130.0) Gecko/20100101 Firefox/130.0"
CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)


def device(user, agent: str = FIREFOX, ip: str = "192.0.2.10", *, csrf: bool = False) -> Client:
    """A browser signed in as ``user`` through the real login view.

    With ``csrf``, the client checks CSRF tokens as a browser's requests are.
    """
    client = Client(enforce_csrf_checks=csrf, HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)
    if csrf:
        client.get("/accounts/login/")
    response = client.post(
        "/accounts/login/",
        {"username": user.get_username(), "password": PASSWORD, **csrf_field(client)},
    )
    assert response.status_code == 302
    return client


def csrf_field(client: Client) -> dict[str, str]:
    """Return the form field carrying the client's CSRF token, if it has one."""
    cookie = client.cookies.get(settings.CSRF_COOKIE_NAME)
    return {"csrfmiddlewaretoken": cookie.value} if cookie else {}


def key_of(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def signed_in(client: Client) -> bool:
    return "Signed in as" in client.get("/").text
