"""sessions_import: old engines' sessions keep working under this one."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.models import Session
from django.contrib.sessions.serializers import JSONSerializer
from django.core import signing
from django.core.management.base import CommandError
from django.test import Client, override_settings
from django.utils import timezone
from django.utils.crypto import get_random_string

from django_charon_sessions import api, importer
from django_charon_sessions.engine import SessionStore
from django_charon_sessions.keyspace import is_engine_key
from tests.test_commands import run

pytestmark = pytest.mark.django_db


def old_key() -> str:
    return get_random_string(32, "abcdefghijklmnopqrstuvwxyz0123456789")


def make_db_sessions(users, n: int, expired: int = 0, corrupt: int = 0) -> dict[str, dict]:
    """Store sessions the way Django's db engine does; return the live ones."""
    rng = random.Random(7)
    now = timezone.now()
    live: dict[str, dict] = {}
    rows = []
    for i in range(n + expired + corrupt):
        key = old_key()
        data: dict[str, object] = {"n": i, "cart": [i, "x"]}
        if users and rng.random() < 0.6:
            user = users[i % len(users)]
            data.update({"_auth_user_id": str(user.pk), "_auth_user_backend": "x.Backend"})
        raw = signing.dumps(data, salt=importer.DB_SALT, serializer=JSONSerializer, compress=True)
        if i >= n + expired:
            raw = raw[:-5] + "AAAAA"  # tampered: fails its signature
        when = now + (timedelta(days=1) if i < n else timedelta(seconds=-5))
        if i >= n + expired:
            when = now + timedelta(days=1)
        rows.append(Session(session_key=key, session_data=raw, expire_date=when))
        if i < n:
            live[key] = data
    Session.objects.bulk_create(rows, batch_size=2000)
    return live


@pytest.fixture
def people(django_user_model):
    return [django_user_model.objects.create_user(f"u{i}", password="x") for i in range(3)]


def owned_by(live: dict[str, dict], user) -> int:
    return sum(d.get("_auth_user_id") == str(user.pk) for d in live.values())


def test_import_from_db(backend, people):
    live = make_db_sessions(people, 60, expired=5, corrupt=2)
    assert run("sessions_import", "--from", "db", "--batch-size", "7") == (
        "Imported 60 sessions from db; skipped 5 expired and 0 already present; 2 failed.\n"
    )
    for key, data in live.items():
        assert dict(SessionStore(key).items()) == data
    for user in people:
        assert len(api.list_sessions(user)) == owned_by(live, user)
    # Another run is a new pass (it used to need --restart, which revived ended
    # sessions): everything is there already, nothing is written again.
    assert run("sessions_import", "--from", "db") == (
        "Imported 0 sessions from db; skipped 5 expired and 60 already present; 2 failed.\n"
    )


@pytest.mark.backends("redis", "cluster")
def test_import_10000_db_sessions(backend, people):
    live = make_db_sessions(people, 10_000)
    report = run("sessions_import", "--from", "db", "--json")
    assert '"imported": 10000' in report and '"failed": 0' in report
    for key, data in live.items():
        assert dict(SessionStore(key).items()) == data
    for user in people:
        assert len(api.list_sessions(user)) == owned_by(live, user)


def test_imported_sessions_are_ended_with_their_user(backend, people):
    live = make_db_sessions(people, 20)
    run("sessions_import", "--from", "db")
    victim = people[0]
    mine = [k for k, d in live.items() if d.get("_auth_user_id") == str(victim.pk)]
    assert api.end_sessions(victim) == len(mine) > 0
    assert all(dict(SessionStore(k).items()) == {} for k in mine)
    others = [k for k in live if k not in mine]
    assert all(SessionStore().exists(k) for k in others)


def test_an_imported_cookie_keeps_its_key_until_cycle_key(backend, people):
    live = make_db_sessions([], 1)
    run("sessions_import", "--from", "db")
    [key] = live
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = key
    # Reading and changing keep the old key: apps that recorded it still find it.
    assert client.get("/session.json").json()["data"] == live[key]
    client.get("/set/theme/dark/")
    assert client.cookies[settings.SESSION_COOKIE_NAME].value == key
    assert client.get("/session.json").json()["data"] == {**live[key], "theme": "dark"}
    # cycle_key() (a login, say) moves it to a key of this engine.
    s = SessionStore(key)
    s.cycle_key()
    s.save()
    assert is_engine_key(s.session_key) and s.session_key != key
    assert not SessionStore().exists(key)
    assert dict(SessionStore(s.session_key).items()) == {**live[key], "theme": "dark"}


def test_a_flushed_imported_session_is_not_brought_back(backend, people):
    live = make_db_sessions([], 1)
    run("sessions_import", "--from", "db")
    [key] = live
    request = SessionStore(key)
    request._get_session()
    SessionStore(key).flush()  # another request logs out
    request["cart"] = [1]
    with pytest.raises(UpdateError):
        request.save()  # must not resurrect it
    assert [k for k in backend.keys() if b"}r" in k] == []  # noqa: SIM118 - no session


def test_dry_run_writes_nothing(backend, people):
    make_db_sessions(people, 10, expired=2, corrupt=1)
    assert run("sessions_import", "--from", "db", "--dry-run") == (
        "Would import 10 sessions from db; skipped 2 expired and 0 already present; 1 failed.\n"
    )
    assert backend.keys() == []


def test_interrupted_import_resumes(backend, people):
    live = make_db_sessions(people, 30)
    calls = []

    def stop_after_first_batch(report):
        calls.append(report.imported)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        importer.import_sessions("db", batch_size=10, progress=stop_after_first_batch)
    assert calls == [10]
    report = importer.import_sessions("db", batch_size=10)
    # It resumes at the first two characters of the last key read, so the rows
    # of the last batch from there on are read again and found present.
    assert (report.resumed, report.imported) == (True, 20)
    assert 1 <= report.already_present <= 10
    assert all(dict(SessionStore(k).items()) == d for k, d in live.items())
    again = importer.import_sessions("db", restart=True)
    assert (again.imported, again.already_present) == (0, 30)


@pytest.mark.backends("redis")
def test_import_from_the_cache_engine_on_django_redis(backend, people):
    url = backend.config["URL"].rsplit("/", 1)[0] + "/2"
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "old": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": url},
    }
    with override_settings(CACHES=caches, SESSION_CACHE_ALIAS="old"):
        from django.contrib.sessions.backends.cache import SessionStore as CacheStore
        from django.core.cache import caches as all_caches

        all_caches["old"].clear()
        old: dict[str, dict] = {}
        for i in range(25):
            s = CacheStore()
            s.update({"i": i, "_auth_user_id": str(people[i % 3].pk)} if i % 2 else {"i": i})
            s.save()
            old[s.session_key] = dict(s.items())
        assert run("sessions_import", "--from", "cache", "--cache-alias", "old") == (
            "Imported 25 sessions from cache; skipped 0 expired and 0 already present; 0 failed.\n"
        )
        for key, data in old.items():
            assert dict(SessionStore(key).items()) == data
        with pytest.raises(CommandError, match="needs a django-redis cache"):
            run("sessions_import", "--from", "cache", "--cache-alias", "default")


def test_cached_db_source_and_restart(backend, people):
    live = make_db_sessions(people, 12)
    assert run("sessions_import", "--from", "cached_db") == (
        "Imported 12 sessions from cached_db; skipped 0 expired and 0 already present; 0 failed.\n"
    )
    assert run("sessions_import", "--from", "cached_db", "--restart") == (
        "Imported 0 sessions from cached_db; skipped 0 expired and 12 already present; 0 failed.\n"
    )
    assert all(dict(SessionStore(k).items()) == d for k, d in live.items())
    with pytest.raises(CommandError, match="--batch-size: must be 1 or more"):
        run("sessions_import", "--from", "db", "--batch-size", "0")


def test_ending_an_imported_session_during_its_first_request_sticks(backend, people):
    live = make_db_sessions(people[:1], 8)
    run("sessions_import", "--from", "db")
    key = next(k for k, d in live.items() if "_auth_user_id" in d)
    request = SessionStore(key)
    request._get_session()  # the first request after the import has loaded it
    api.end_sessions(people[0])  # "log out everywhere" meanwhile
    request["theme"] = "dark"
    with pytest.raises(UpdateError):
        request.save()
    assert api.list_sessions(people[0]) == []
    # Nor does a password change's cycle_key() bring it back.
    request = SessionStore(key)
    assert dict(request.items()) == {}
