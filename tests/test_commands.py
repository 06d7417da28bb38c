"""The management commands, with their whole outputs, on every backend."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from django_charon_sessions import api, library
from django_charon_sessions.client import get_client
from django_charon_sessions.engine import SessionStore
from django_charon_sessions.keyspace import Keys, member_of, user_tag

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def run_json(*args: str) -> object:
    return json.loads(run(*args, "--json"))


@pytest.fixture
def ada(django_user_model):
    return django_user_model.objects.create_user("ada", email="ada@example.com", password="x")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", email="bob@example.com", password="x")


def sessions_of(user, n: int, expiry: int | None = None) -> list[str]:
    keys = []
    for _ in range(n):
        s = SessionStore()
        s["_auth_user_id"] = api.user_id_of(user)
        if expiry is not None:
            s.set_expiry(expiry)
        s.save()
        keys.append(s.session_key)
    return keys


# -- sessions_cleanup ----------------------------------------------------------------


@pytest.fixture
def stale(backend, ada, bob):
    """ada: 2 live sessions, 1 expired and 1 vanished index entry; bob: 2 ended."""
    sessions_of(ada, 1, expiry=1)
    live = sessions_of(ada, 3)
    backend.admin.delete(Keys.for_session("charon", live[0]).record)  # evicted
    sessions_of(bob, 2)
    api.end_sessions(bob)
    time.sleep(1.1)
    return ada


def test_cleanup_dry_run_then_run_then_nothing_left(backend, stale):
    assert run("sessions_cleanup", "--dry-run") == (
        "Would remove 2 stale index entries (1 expired, 1 vanished) and the data of "
        "2 ended sessions.\n"
        "Live: 2 sessions of 1 user (1 user index scanned).\n"
    )
    assert run("sessions_cleanup") == (
        "Removed 2 stale index entries (1 expired, 1 vanished) and the data of "
        "2 ended sessions.\n"
        "Live: 2 sessions of 1 user (1 user index scanned).\n"
    )
    assert run("sessions_cleanup") == (
        "Removed 0 stale index entries (0 expired, 0 vanished) and the data of "
        "0 ended sessions.\n"
        "Live: 2 sessions of 1 user (1 user index scanned).\n"
    )
    assert len(api.list_sessions(stale)) == 2
    assert [k for k in backend.keys() if k.endswith(b":x")] == []  # noqa: SIM118


def test_cleanup_json_and_detail(backend, stale):
    out = StringIO()
    call_command("sessions_cleanup", "--dry-run", verbosity=2, stdout=out)
    # Named as sessions_list names users, not by the tag of their index.
    assert out.getvalue().splitlines()[0] == (
        f"  user ada (pk {stale.pk}): 1 expired, 1 vanished, 2 live"
    )
    [detail] = run_json("sessions_cleanup", "--dry-run", "-v", "2")["details"]  # type: ignore[index]
    assert detail["user"] == "ada" and detail["pk"] == str(stale.pk)
    assert detail["tag"] == user_tag(api.user_id_of(stale))
    assert run_json("sessions_cleanup", "--batch-size", "1") == {
        "dry_run": False,
        "indexes": 1,
        "expired": 1,
        "vanished": 1,
        "ended_purged": 2,
        "live_sessions": 2,
        "users": 1,
    }


def test_cleanup_detail_names_a_user_gone_from_the_database(backend, ada):
    sessions_of(ada, 1)
    sessions_of("999999", 2)  # signed in as a user the database does not hold
    tag = user_tag("999999")
    lines = run("sessions_cleanup", "-v", "2").splitlines()
    assert f"  user ada (pk {ada.pk}): 0 expired, 0 vanished, 1 live" in lines
    assert any(line.startswith(f"  user not in the database (tag {tag}):") for line in lines)


def test_cleanup_is_what_clear_expired_does(backend, stale):
    call_command("clearsessions")
    assert run_json("sessions_cleanup")["expired"] == 0  # type: ignore[index]


def test_cleanup_with_redis_unreachable():
    config = {"URL": "redis://127.0.0.1:1/0", "SOCKET_CONNECT_TIMEOUT": 0.2}
    with (
        override_settings(CHARON_SESSIONS=config),
        pytest.raises(
            CommandError, match=r"Session store unavailable: Redis at redis://127\.0\.0\.1:1/0"
        ),
    ):
        run("sessions_cleanup")


# -- sessions_kill_user ----------------------------------------------------------------


def test_kill_user_by_username_pk_and_email(backend, ada, bob):
    sessions_of(ada, 2)
    sessions_of(bob, 1)
    assert run("sessions_kill_user", "ada", str(bob.pk)) == (
        f"Ended 2 sessions of ada (pk {ada.pk}).\n"
        f"Ended 1 session of bob (pk {bob.pk}).\n"
        "Ended 3 sessions of 2 users in all.\n"
    )
    sessions_of(ada, 1)
    assert (
        run("sessions_kill_user", "ADA@example.com") == f"Ended 1 session of ada (pk {ada.pk}).\n"
    )
    assert api.list_sessions(ada) == [] and api.list_sessions(bob) == []


def test_kill_user_dry_run_and_keep(backend, ada):
    keys = sessions_of(ada, 3)
    keep = member_of(keys[1])
    assert run("sessions_kill_user", "ada", "--dry-run", "--keep-session", keep) == (
        f"Would end 2 sessions of ada (pk {ada.pk}).\n"
    )
    assert len(api.list_sessions(ada)) == 3
    assert run_json("sessions_kill_user", "ada", "--keep-session", keep) == {
        "dry_run": False,
        "users": [{"user": "ada", "pk": str(ada.pk), "ended": 2}],
        "total": 2,
    }
    assert [s.id for s in api.list_sessions(ada)] == [keep]


def test_kill_all_users(backend, ada, bob):
    sessions_of(ada, 2)
    sessions_of(bob, 1)
    assert run("sessions_kill_user", "--all-users", "--dry-run") == (
        "Would end 3 sessions of 2 users.\n"
    )
    assert run("sessions_kill_user", "--all-users", "--yes") == "Ended 3 sessions of 2 users.\n"
    assert api.list_sessions(ada) == [] and api.list_sessions(bob) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "Name at least one USER, or use --all-users --yes."),
        (("--all-users",), "--all-users ends every session on the site; add --yes."),
        (("ada", "--all-users", "--yes"), "--all-users takes no USER and no --keep-session."),
        (("ada", "--keep-session", "nope"), "--keep-session takes a public session id"),
        (("nobody",), "No user matches 'nobody' (tried primary key, username and email)."),
        (("ada", "nobody"), "No user matches 'nobody'"),
    ],
)
def test_kill_user_mistakes(backend, ada, args, message):
    sessions_of(ada, 1)
    with pytest.raises(CommandError) as info:
        run("sessions_kill_user", *args)
    assert str(info.value).startswith(message)
    assert len(api.list_sessions(ada)) == 1  # all or nothing


# -- sessions_list ---------------------------------------------------------------------


def test_list_a_users_sessions(backend, ada):
    sessions_of(ada, 2)
    listed = api.list_sessions(ada)
    lines = run("sessions_list", "ada").splitlines()
    assert lines[0].split() == [
        "ID",
        "CREATED",
        "LAST",
        "SEEN",
        "IP",
        "BROWSER",
        "/",
        "OS",
        "EXPIRES",
    ]
    for line, s in zip(lines[1:3], listed, strict=True):
        stamp = "%Y-%m-%d %H:%M UTC"
        assert line.split("  ")[0] == s.id
        assert s.created.strftime(stamp) in line and s.expires.strftime(stamp) in line
        assert " - " in line and "Unknown / Unknown" in line
    assert lines[3] == f"2 live sessions of ada (pk {ada.pk})."
    assert len(lines) == 4
    # -v 2 adds what the table leaves out: each session's whole user agent.
    detailed = run("sessions_list", "ada", "-v", "2").splitlines()
    assert detailed[:3] == lines[:3] and detailed[-1] == lines[3]
    assert detailed[3:5] == [f"  {s.id}  user agent: -" for s in listed]
    data = run_json("sessions_list", str(ada.pk))
    assert [d["id"] for d in data] == [s.id for s in listed]  # type: ignore[union-attr]


def test_list_without_sessions(backend, ada):
    assert run("sessions_list", "ada") == f"ada (pk {ada.pk}) has no live sessions.\n"


def test_list_summary_without_site_activity(backend, ada):
    sessions_of(ada, 2)
    assert run("sessions_list") == (
        "Live sessions: 2\nUsers with live sessions: 1\nActive within 900s: 2\n"
        "Who is online: not tracked (SITE_ACTIVITY is off)\n"
    )
    assert run_json("sessions_list")["online"] is None  # type: ignore[index]


def test_list_summary(backend, ada, bob):
    with backend.settings(SITE_ACTIVITY=True):
        _list_summary(ada, bob)


def _list_summary(ada, bob):
    sessions_of(ada, 2)
    sessions_of(bob, 1)
    assert run("sessions_list", "--active-within", "2h") == (
        "Live sessions: 3\nUsers with live sessions: 2\nActive within 7200s: 3\n"
        "Seen within 5m: 2 users, 3 sessions\n"
        "Seen within 1h: 2 users, 3 sessions\n"
        "Seen within 1d: 2 users, 3 sessions\n"
    )
    online = [{"within_seconds": w, "sessions": 3, "users": 2} for w in (300, 3600, 86400)]
    assert run_json("sessions_list") == {
        "sessions": 3,
        "users": 2,
        "active": 3,
        "active_within_seconds": 900,
        "online": online,
    }
    with pytest.raises(CommandError, match="is not a duration"):
        run("sessions_list", "--active-within", "soon")


# -- sessions_functions ----------------------------------------------------------------


def test_functions_status_load_and_source(backend):
    backend.admin.function_flush()
    status = run_json("sessions_functions")
    assert status["library"] == library.LIBRARY and status["loaded"] is False  # type: ignore[index]
    text = run("sessions_functions", "load")
    assert text.startswith(f"Loaded {library.LIBRARY} on ")
    assert "Missing on" not in text
    status = run_json("sessions_functions", "status")
    assert status["loaded"] is True  # type: ignore[index]
    assert all(names == [library.LIBRARY] for names in status["servers"].values())  # type: ignore[index]
    assert run("sessions_functions", "source") == library.SOURCE


def test_functions_status_names_servers_by_address(backend):
    if backend.name == "cluster":
        expected = sorted(n.name for n in backend.admin.get_primaries())
    else:
        kwargs = get_client().connection_pool.connection_kwargs
        expected = [f"{kwargs['host']}:{kwargs['port']}"]
        if backend.name == "redis":
            assert expected == [
                backend.admin.connection_pool.connection_kwargs["host"]
                + ":"
                + str(backend.admin.connection_pool.connection_kwargs["port"])
            ]
    run("sessions_functions", "load")
    servers = run_json("sessions_functions")["servers"]  # type: ignore[index]
    assert sorted(servers) == expected
    lines = run("sessions_functions").splitlines()[1:]
    assert [line.split(": ")[0].strip() for line in lines] == expected
    assert all(":" in name and name != "redis" for name in expected)


class _Terminal(StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_goes_to_a_terminal_only(backend, ada, monkeypatch):
    sessions_of(ada, 2)
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    run("sessions_cleanup", "--batch-size", "1")
    shown = terminal.getvalue()
    assert re.search(r"1 user index scanned, 0 entries removed, [0-9]+/s", shown)
    piped = StringIO()
    monkeypatch.setattr("sys.stderr", piped)
    run("sessions_cleanup")
    assert piped.getvalue() == ""


# -- durations and counts: one parser, limits named ------------------------------------

BIG = "9" * 20
COUNT_LIMIT = "is not a whole number from 1 to 100000."
DURATION_LIMIT = "is too long; the limit is 3650d (315360000 seconds)."


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("sessions_list", "--active-within", BIG + "d"), DURATION_LIMIT),
        (("sessions_list", "--active-within", "3651d"), DURATION_LIMIT),
        (("sessions_list", "--active-within", "315360001"), DURATION_LIMIT),
        (("sessions_list", "--active-within", "9" * 5000), DURATION_LIMIT),
        (("sessions_list", "ada", "--active-within", BIG + "h"), DURATION_LIMIT),
        (("sessions_list", "--active-within=-5m"), "is not a duration"),
        (("sessions_list", "--active-within", "5 m"), "is not a duration"),
        (("sessions_list", "--active-within", "\u0665m"), "is not a duration"),
        (("sessions_cleanup", "--batch-size", BIG), COUNT_LIMIT),
        (("sessions_cleanup", "--batch-size", "100001"), COUNT_LIMIT),
        (("sessions_cleanup", "--batch-size", "0"), COUNT_LIMIT),
        (("sessions_cleanup", "--batch-size", "-1"), COUNT_LIMIT),
        (("sessions_cleanup", "--batch-size", "1e3"), COUNT_LIMIT),
        (("sessions_import", "--from", "db", "--batch-size", BIG), COUNT_LIMIT),
        (("sessions_import", "--from", "db", "--batch-size", "0", "--dry-run"), COUNT_LIMIT),
    ],
)
def test_out_of_range_durations_and_counts_are_command_errors(backend, ada, args, message):
    with pytest.raises(CommandError) as info:
        run(*args)
    option = next(
        a.split("=")[0] for a in args if a.startswith("--") and a not in {"--from", "--dry-run"}
    )
    assert str(info.value).startswith(f"{option}: ")
    assert message in str(info.value)
    assert len(str(info.value)) < 120  # the value is echoed, never at any length


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("sessions_cleanup", {"batch_size": 0}),
        ("sessions_cleanup", {"batch_size": 10**30}),
        ("sessions_import", {"source": "db", "batch_size": 10**30}),
        ("sessions_list", {"active_within": 10**30}),
    ],
)
def test_limits_hold_for_call_command_keywords(backend, command, options):
    # Keyword options skip argparse, so the limits are checked in handle().
    with pytest.raises(CommandError, match=r"is not a whole number|is too long"):
        call_command(command, stdout=StringIO(), **options)


@pytest.mark.parametrize(
    ("value", "seconds"), [("0", 0), ("900", 900), ("15m", 900), ("2h", 7200), ("3650d", 315360000)]
)
def test_durations_up_to_the_limit_are_accepted(backend, value, seconds):
    assert run_json("sessions_list", "--active-within", value)["active_within_seconds"] == seconds  # type: ignore[index]


def test_counts_up_to_the_limit_are_accepted(backend, stale):
    for size in ("1", "100000"):
        assert run_json("sessions_cleanup", "--dry-run", "--batch-size", size)["expired"] == 1  # type: ignore[index]
    assert "Would import 0 sessions" in run(
        "sessions_import", "--from", "db", "--dry-run", "--batch-size", "100000"
    )


def test_import_progress_gives_the_total_and_the_rate(backend, ada, monkeypatch):
    from django.contrib.sessions.backends.db import SessionStore as DbStore

    for _ in range(3):
        DbStore().save(must_create=True)
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    run("sessions_import", "--from", "db", "--dry-run", "--batch-size", "2")
    shown = terminal.getvalue()
    assert re.search(r"2 of 3 sessions read, 2 imported, 66%, [0-9]+/s", shown)
    assert re.search(r"3 of 3 sessions read, 3 imported, 100%, [0-9]+/s", shown)


# -- output piped into a reader that stops early ---------------------------------------


# Run in a child process: an in-memory database and a fake Redis of its own,
# one user with many sessions, then `manage.py sessions_list ada -v 2`.
_PIPED_CHILD = """
import django
from django.core.management import call_command, execute_from_command_line
django.setup()
from django.contrib.auth import get_user_model
from django_charon_sessions.engine import SessionStore
call_command("migrate", verbosity=0)
ada = get_user_model().objects.create_user("ada", password="x")
for _ in range(100):
    s = SessionStore()
    s["_auth_user_id"] = str(ada.pk)
    s.save()
execute_from_command_line(["manage.py", "sessions_list", "ada", "-v", "2"])
"""


def test_a_closed_pipe_ends_the_command_quietly(repo_root):
    import fcntl

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "testproject.settings", "DJANGO_DB": ":memory:"}
    env.pop("CHARON_REDIS_URL", None)  # the settings' in-process fake Redis
    child = subprocess.Popen(
        [sys.executable, "-c", _PIPED_CHILD],
        cwd=repo_root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None and child.stderr is not None
    # A pipe much smaller than the output: the command is still writing when
    # the reader goes, as with `| head -1`, whatever the timing.
    fcntl.fcntl(child.stdout.fileno(), fcntl.F_SETPIPE_SZ, 4096)
    assert child.stdout.readline().split()[0] == b"ID"
    child.stdout.close()
    errors = child.stderr.read().decode()
    child.wait(timeout=120)
    assert "Traceback" not in errors and "BrokenPipeError" not in errors
    assert errors == ""
    assert child.returncode == 1
