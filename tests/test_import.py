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
from django_charon_sessions.codec import BadRecordError, Codec
from django_charon_sessions.engine import SessionStore
from django_charon_sessions.keyspace import (
    Keys,
    import_state_key,
    is_engine_key,
    legacy_tag,
    member_of,
)
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
        # A pass from the table would take every cache session for one gone from it.
        with pytest.raises(CommandError, match="Import from one source only"):
            run("sessions_import", "--from", "db")
        assert all(dict(SessionStore(key).items()) == data for key, data in old.items())


def test_cached_db_source_and_restart(backend, people):
    live = make_db_sessions(people, 12)
    assert run("sessions_import", "--from", "cached_db") == (
        "Imported 12 sessions from cached_db; skipped 0 expired and 0 already present; 0 failed.\n"
    )
    assert run("sessions_import", "--from", "cached_db", "--restart") == (
        "Imported 0 sessions from cached_db; skipped 0 expired and 12 already present; 0 failed.\n"
    )
    assert all(dict(SessionStore(k).items()) == d for k, d in live.items())
    with pytest.raises(CommandError, match=r"--batch-size: .0. is not a whole number from 1 to"):
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


# -- repeated passes: nothing ended here comes back ------------------------------


def add_row(key: str, data: dict, days: float = 1) -> None:
    """Store one session the way Django's db engine does."""
    raw = signing.dumps(data, salt=importer.DB_SALT, serializer=JSONSerializer, compress=True)
    when = timezone.now() + timedelta(days=days)
    Session.objects.update_or_create(
        session_key=key, defaults={"session_data": raw, "expire_date": when}
    )


def interrupt(report: importer.ImportReport) -> None:
    raise KeyboardInterrupt  # as an operator's Ctrl-C after a batch


def signed_in(user, **extra) -> dict:
    return {"_auth_user_id": str(user.pk), "_auth_user_backend": "x.Backend", **extra}


def alive(key: str) -> bool:
    return SessionStore().exists(key) and dict(SessionStore(key).items()) != {}


def test_a_second_pass_brings_back_nothing_that_ended_or_moved(backend, people):
    ada, bob, cy = people
    rows = {
        "flushed": (old_key(), signed_in(ada, n=1)),
        "flushed_anonymous": (old_key(), {"n": 2}),
        "revoked": (old_key(), signed_in(ada, n=3)),
        "everywhere": (old_key(), signed_in(bob, n=4)),
        "everywhere_too": (old_key(), signed_in(bob, n=5)),
        "cycled": (old_key(), signed_in(cy, n=6)),
        "cycled_anonymous": (old_key(), {"n": 7}),
        "untouched": (old_key(), signed_in(cy, n=8)),
        "untouched_anonymous": (old_key(), {"n": 9}),
    }
    for key, data in rows.values():
        add_row(key, data)
    first = importer.import_sessions("db")
    assert (first.imported, first.ended) == (9, 0)
    key = {name: k for name, (k, _) in rows.items()}

    SessionStore(key["flushed"]).flush()  # sign-out
    SessionStore(key["flushed_anonymous"]).flush()
    assert api.end_session(ada, api.public_id(key["revoked"]))  # revoked in the admin
    assert api.end_sessions(bob) == 2  # "log out everywhere"
    moved = {}
    for name in ("cycled", "cycled_anonymous"):  # a login or a password change
        s = SessionStore(key[name])
        s.cycle_key()
        s.save()
        moved[name] = s.session_key

    second = importer.import_sessions("db")
    assert (second.imported, second.already_present, second.ended) == (0, 2, 7)
    third = importer.import_sessions("db", restart=True)
    assert (third.imported, third.already_present, third.ended) == (0, 2, 7)
    for name, k in key.items():
        assert alive(k) == name.startswith("untouched"), name
    for name, new_key in moved.items():
        assert dict(SessionStore(new_key).items()) == rows[name][1]
    assert len(api.list_sessions(ada)) == 0
    assert len(api.list_sessions(bob)) == 0
    assert len(api.list_sessions(cy)) == 2  # the moved one and the untouched one


def test_sign_outs_under_the_old_engine_remove_the_copy(backend, people):
    ada, bob, _ = people
    rows = {
        "signed_out": (old_key(), signed_in(ada, n=1)),
        "signed_out_anonymous": (old_key(), {"n": 2}),
        "changed_here": (old_key(), signed_in(bob, n=3)),
        "stays": (old_key(), signed_in(bob, n=4)),
        "signs_in": (old_key(), {"n": 5}),
    }
    for k, data in rows.values():
        add_row(k, data)
    importer.import_sessions("db")
    key = {name: k for name, (k, _) in rows.items()}
    # This engine serves one of them and changes it (a rolling deploy, say).
    here = SessionStore(key["changed_here"])
    here["theme"] = "dark"
    here.save()
    # Meanwhile, under the old engine: two sign-outs and the third row goes too.
    Session.objects.filter(
        session_key__in=[key["signed_out"], key["signed_out_anonymous"], key["changed_here"]]
    ).delete()
    # A row whose user id was set without a new key moves to the user's slot.
    add_row(key["signs_in"], signed_in(ada, n=5))

    report = importer.import_sessions("db")
    assert (report.removed, report.kept, report.imported) == (3, 1, 1)
    assert report.checked_removals
    assert not alive(key["signed_out"]) and not alive(key["signed_out_anonymous"])
    assert dict(SessionStore(key["changed_here"]).items()) == {
        **rows["changed_here"][1],
        "theme": "dark",
    }
    assert dict(SessionStore(key["signs_in"]).items()) == signed_in(ada, n=5)
    assert [s.id for s in api.list_sessions(ada)] == [api.public_id(key["signs_in"])]
    assert dict(SessionStore(key["stays"]).items()) == rows["stays"][1]
    # And nothing comes back on later passes.
    again = importer.import_sessions("db")
    assert (again.imported, again.removed, again.kept, again.already_present) == (0, 0, 1, 2)
    assert not alive(key["signed_out"]) and not alive(key["signed_out_anonymous"])


def test_a_session_ended_while_a_pass_writes_its_batch_stays_ended(backend, people, monkeypatch):
    ada = people[0]
    k1, k2 = old_key(), old_key()
    add_row(k1, signed_in(ada, n=1))
    add_row(k2, {"n": 2})
    importer.import_sessions("db")
    real = importer._write_batch

    def end_first(client, batch, report, seen):
        # The pass has read the rows; before it writes them, both sessions end here.
        api.end_sessions(ada)
        SessionStore(k2).flush()
        real(client, batch, report, seen)

    monkeypatch.setattr(importer, "_write_batch", end_first)
    report = importer.import_sessions("db")
    assert (report.imported, report.already_present, report.ended) == (0, 0, 2)
    assert not alive(k1) and not alive(k2)


def test_a_resumed_pass_rereads_its_last_batch_without_reviving(backend, people):
    ada = people[0]
    # The first batch ends with two keys of one two-character prefix.
    heads = ["a0", "a1", "a2", "a3", "mm", "mm", "q0", "q1", "q2", "q3", "q4", "q5"]
    keys = sorted(head + old_key()[2:] for head in heads)
    for n, k in enumerate(keys):
        add_row(k, signed_in(ada, n=n) if n % 2 else {"n": n})

    with pytest.raises(KeyboardInterrupt):
        importer.import_sessions("db", batch_size=6, progress=interrupt)
    assert [alive(k) for k in keys] == [True] * 6 + [False] * 6
    # The last key read (and the batch's others) end before the pass resumes.
    SessionStore(keys[4]).flush()
    SessionStore(keys[5]).flush()
    resumed = importer.import_sessions("db", batch_size=6)
    assert resumed.resumed and not resumed.checked_removals
    assert (resumed.imported, resumed.ended, resumed.already_present) == (6, 2, 0)
    assert [alive(k) for k in keys] == [True] * 4 + [False] * 2 + [True] * 6
    # A resumed pass did not read the whole source: removals wait for the next.
    Session.objects.filter(session_key=keys[0]).delete()
    assert importer.import_sessions("db").removed == 1
    assert not alive(keys[0])


def test_a_pass_follows_the_source_expiry_of_copies_never_changed_here(backend, people):
    k = old_key()
    add_row(k, {"n": 1}, days=1)
    importer.import_sessions("db")
    add_row(k, {"n": 1}, days=5)  # the old engine saved it again
    importer.import_sessions("db")
    prefix = backend.config.get("KEY_PREFIX", "charon")
    record = Keys.for_member(prefix, legacy_tag(k), member_of(k)).record
    assert backend.admin.pttl(record) > 4 * 86_400_000


def test_no_session_key_reaches_redis(backend, people):
    live = make_db_sessions(people, 40, expired=3, corrupt=2)
    every_key = list(Session.objects.values_list("session_key", flat=True))

    with pytest.raises(KeyboardInterrupt):
        importer.import_sessions("db", batch_size=7, progress=interrupt)
    importer.import_sessions("db", batch_size=7)  # resumed
    SessionStore(next(iter(live))).flush()
    importer.import_sessions("db", restart=True)
    with pytest.raises(KeyboardInterrupt):  # its checkpoint is left behind
        importer.import_sessions("db", batch_size=7, progress=interrupt)
    dump = b"\n".join(backend.dump())
    for key in every_key:
        for start in range(0, len(key) - 11):
            assert key[start : start + 12].encode() not in dump
    prefix = backend.config.get("KEY_PREFIX", "charon")
    checkpoint = backend.admin.get(import_state_key(prefix, "db"))
    assert checkpoint is not None and len(checkpoint) == len("at:xx")
    # Every key the import made expires by itself.
    assert all(backend.admin.pttl(key) > 0 for key in backend.keys())  # noqa: SIM118


def test_the_command_reports_refusals_removals_and_resumes(backend, people):
    gone, ended, stays = old_key(), old_key(), old_key()
    for k in (gone, ended, stays):
        add_row(k, signed_in(people[0]))
    run("sessions_import", "--from", "db")
    Session.objects.filter(session_key=gone).delete()  # signed out under the old engine
    SessionStore(ended).flush()  # signed out under this one
    assert run("sessions_import", "--from", "db") == (
        "Imported 0 sessions from db; skipped 0 expired and 1 already present; 0 failed.\n"
        "Refused 1 session ended, moved or expired here since an earlier run.\n"
        "Removed 1 session gone from the source.\n"
    )
    with pytest.raises(KeyboardInterrupt):
        importer.import_sessions("db", batch_size=1, progress=interrupt)
    assert run("sessions_import", "--from", "db").endswith(
        "This run resumed an interrupted one, so it did not look for sessions gone "
        "from the source: run it once more.\n"
    )
    assert [alive(k) for k in (gone, ended, stays)] == [False, False, True]


def test_a_new_record_is_what_the_engine_would_seal_and_open():
    """The importer's public way to seal (Codec.new_record), checked by the engine's codec."""
    codec = Codec.from_settings()
    member = member_of(old_key())
    data = {"_auth_user_id": 7, "n": [1, 2]}
    uid, created, record = codec.new_record(member, data)
    opened = codec.open(member, record)
    assert (uid, opened.user, opened.version) == ("7", "7", 1)
    assert opened.created == opened.last_seen == created
    assert codec.loads(opened.body) == data
    assert codec.new_record(member, {"_auth_user_id": ""})[0] is None  # anonymous, as the engine
    with pytest.raises(BadRecordError):
        codec.open(member_of(old_key()), record)  # bound to its own session
