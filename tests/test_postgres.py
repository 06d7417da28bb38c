"""Session keys recorded in a 40 character column, on a real PostgreSQL.

Apps that list a user's devices (allauth's usersessions, say) store
``request.session.session_key`` in a ``CharField(max_length=40)``, the size of
Django's own ``Session.session_key``. SQLite ignores the length; PostgreSQL
refuses a longer value ("value too long for type character varying(40)").
The demo app's ``DeviceLogin`` model and ``user_logged_in`` receiver do what
such apps do; these tests sign in every way Django offers, with this engine
(on each Redis backend) and with Django's own ``db`` and ``cache`` engines,
and check that the key read right after ``login()`` is the one stored and
sent in the cookie, and that it signs the next request in.

The module starts its own PostgreSQL server (unix socket, no TCP; see
``tests.harness.PostgresServer``) and points Django's ``default`` database at
it for its own tests only; every other module keeps SQLite. Without
PostgreSQL (or psycopg) the module is skipped, except under ``CI=true``.
"""

from __future__ import annotations

import importlib
import os
import re
from typing import TYPE_CHECKING, Any

import pytest
from django.conf import settings
from django.core.cache import caches
from django.db import DataError, connection, connections, transaction
from django.test import Client

from testproject.demo.models import DeviceLogin
from tests.harness import PostgresServer, postgres_missing, require_postgres

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.django_db

CHARON = "django_charon_sessions.engine"
DJANGO_ENGINES = {
    "db": "django.contrib.sessions.backends.db",
    "cache": "django.contrib.sessions.backends.cache",
}
#: The size of Django's ``Session.session_key`` and of ``DeviceLogin.session_key``.
COLUMN = 40
PASSWORD = "correct-horse-battery"
NEW_PASSWORD = "N3w-pass-word!"


# -- the server and the database --------------------------------------------


@pytest.fixture(scope="module")
def postgres_server() -> Iterator[PostgresServer]:
    if not require_postgres():
        pytest.skip(str(postgres_missing()))
    try:
        import psycopg  # noqa: F401
    except ImportError:
        if os.environ.get("CI") == "true":
            raise RuntimeError(
                "CI=true but psycopg is not installed (tox.ini installs it)."
            ) from None
        pytest.skip('psycopg is not installed (pip install "psycopg[binary]")')
    server = PostgresServer().start()
    yield server
    server.close()


def _clear_content_types() -> None:
    # Cached per database alias: ids of one database are wrong in the other.
    from django.contrib.contenttypes.models import ContentType

    ContentType.objects.clear_cache()


@pytest.fixture(scope="module")
def django_db_setup(
    request: pytest.FixtureRequest,
    django_test_environment: None,
    django_db_blocker: Any,
    postgres_server: PostgresServer,
) -> Iterator[None]:
    """Replace pytest-django's (SQLite) test database with one on PostgreSQL.

    The ``default`` alias gets a new connection and settings for this module's
    tests; the previous ones (an SQLite test database other modules may have
    set up already) are put back afterwards, untouched.
    """
    from django.test.utils import setup_databases, teardown_databases

    verbosity = request.config.option.verbose
    previous_connection = connections["default"]
    previous_settings = connections.settings["default"]
    postgres = {**postgres_server.database_settings(), "TEST": {"NAME": "test_charon"}}
    connections.settings["default"] = connections.configure_settings({"default": postgres})[
        "default"
    ]
    connections["default"] = connections.create_connection("default")
    _clear_content_types()
    try:
        with django_db_blocker.unblock():
            config = setup_databases(verbosity=verbosity, interactive=False, aliases={"default"})
        try:
            yield
        finally:
            with django_db_blocker.unblock():
                teardown_databases(config, verbosity=verbosity)
    finally:
        connections["default"].close()
        connections.settings["default"] = previous_settings
        connections["default"] = previous_connection
        _clear_content_types()


# -- helpers ----------------------------------------------------------------


@pytest.fixture
def user(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("ada", password=PASSWORD)


@pytest.fixture
def other(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("grace", password=PASSWORD)


def cookie(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def recorded(user: Any) -> list[str]:
    return list(DeviceLogin.objects.filter(user=user).values_list("session_key", flat=True))


def store() -> Any:
    return importlib.import_module(settings.SESSION_ENGINE).SessionStore()


def sign_in(client: Client, username: str = "ada", password: str = PASSWORD) -> None:
    response = client.post("/accounts/login/", {"username": username, "password": password})
    assert response.status_code == 302, response.content[:500]


def assert_signs_in(key: str, user: Any) -> None:
    """``key`` is a well-formed, stored session key that signs a request in as ``user``."""
    assert len(key) <= COLUMN
    if settings.SESSION_ENGINE == CHARON:
        assert re.fullmatch(r"[a-z0-9]{40}", key), key
    else:
        assert re.fullmatch(r"[a-z0-9]{32}", key), key
    assert store().exists(key)
    fresh = Client()
    fresh.cookies[settings.SESSION_COOKIE_NAME] = key
    response = fresh.get("/")
    assert response.wsgi_request.user.pk == user.pk
    assert f"Signed in as {user.get_username()}" in response.text


# -- the engines ------------------------------------------------------------


class Scenarios:
    """Every test runs per engine: see the subclasses' ``engine`` fixtures."""

    @pytest.fixture
    def engine(self) -> str:
        raise NotImplementedError

    def test_the_column_is_enforced(self, engine, user):
        assert connection.vendor == "postgresql"
        assert DeviceLogin._meta.get_field("session_key").max_length == COLUMN
        with pytest.raises(DataError, match="too long"), transaction.atomic():
            DeviceLogin.objects.create(user=user, session_key="a" * (COLUMN + 1))
        assert store().exists("a" * COLUMN) is False

    def test_login_view(self, engine, user):
        client = Client()
        sign_in(client)
        [key] = recorded(user)
        assert key == cookie(client)
        assert_signs_in(key, user)
        assert client.get("/").wsgi_request.user == user

    def test_login_view_after_an_anonymous_session(self, engine, user):
        client = Client()
        client.get("/set/theme/dark/")
        anonymous = cookie(client)
        assert store().exists(anonymous)
        sign_in(client)
        [key] = recorded(user)
        assert key == cookie(client) != anonymous
        assert not store().exists(anonymous)
        assert_signs_in(key, user)
        assert client.get("/session.json").json()["data"]["theme"] == "dark"

    def test_client_login(self, engine, user):
        client = Client()
        assert client.login(username="ada", password=PASSWORD)
        [key] = recorded(user)
        assert key == cookie(client)
        assert_signs_in(key, user)

    def test_client_force_login(self, engine, user):
        client = Client()
        client.force_login(user)
        [key] = recorded(user)
        assert key == cookie(client)
        assert_signs_in(key, user)

    def test_password_change_keeps_the_session_under_a_new_key(self, engine, user):
        client = Client()
        sign_in(client)
        [key] = recorded(user)
        response = client.post(
            "/accounts/password_change/",
            {
                "old_password": PASSWORD,
                "new_password1": NEW_PASSWORD,
                "new_password2": NEW_PASSWORD,
            },
        )
        assert response.status_code == 302
        new_key = cookie(client)
        # update_session_auth_hash() cycles the key; it is not a sign-in.
        assert new_key != key
        assert recorded(user) == [key]
        assert not store().exists(key)
        assert_signs_in(new_key, user)
        # Signing in with the new password records the key of that session.
        client.logout()
        sign_in(client, password=NEW_PASSWORD)
        assert recorded(user) == [key, cookie(client)]
        assert_signs_in(cookie(client), user)

    def test_signing_in_again_as_the_same_user_keeps_the_key(self, engine, user):
        client = Client()
        sign_in(client)
        sign_in(client)
        # login() keeps a session that is already this user's: same key twice.
        assert recorded(user) == [cookie(client)] * 2
        assert_signs_in(cookie(client), user)

    def test_signing_in_as_another_user_records_nothing(self, engine, user, other):
        client = Client()
        sign_in(client)
        [first] = recorded(user)
        sign_in(client, username="grace")
        # login() flushes another user's session: no key until it is saved,
        # so the receiver has none to record (with Django's engines as well).
        assert recorded(other) == []
        assert not store().exists(first)
        assert cookie(client) != first
        assert_signs_in(cookie(client), other)


class TestCharonEngine(Scenarios):
    """This engine, on each Redis backend (fake, redis, cluster)."""

    @pytest.fixture
    def engine(self, backend, settings) -> str:
        settings.SESSION_ENGINE = CHARON
        return CHARON


class TestDjangoEngines(Scenarios):
    """Django's own engines, for comparison: the same tests must pass."""

    @pytest.fixture(params=sorted(DJANGO_ENGINES))
    def engine(self, request, settings) -> Iterator[str]:
        settings.SESSION_ENGINE = DJANGO_ENGINES[request.param]
        caches[settings.SESSION_CACHE_ALIAS].clear()
        yield settings.SESSION_ENGINE
        caches[settings.SESSION_CACHE_ALIAS].clear()
