"""Redis ACL users with too few permissions (issue 7, point 4).

The app's Redis user needs FCALL and FCALL_RO, the commands the functions
run (Redis checks those against the caller's ACL too), and FUNCTION LOAD
unless an operator loads the library. Each missing grant must give a clear
``SessionStoreError`` naming what to grant (not ``RedisUnavailable``: nothing
is down), and ``manage.py check --deploy`` must say it before traffic does.
tests/test_checks.py covers LOAD_FUNCTIONS off (E104) with full rights.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import redis.exceptions
from django.test import override_settings

from django_charon_sessions import deploy
from django_charon_sessions.engine import SessionStore
from django_charon_sessions.errors import translate
from django_charon_sessions.exceptions import RedisUnavailable, SessionStoreError
from django_charon_sessions.library import SOURCE
from tests.harness import RedisServer, require_redis

if TYPE_CHECKING:
    from collections.abc import Iterator

RULES = {
    # May call the functions and run what they run, but not load them.
    "caller": ["~charon:*", "+@all", "-function|load", "-function|delete", "-function|flush"],
    # May do neither.
    "nobody": ["~charon:*", "+@all", "-fcall", "-fcall_ro", "-function"],
    # May call, but the functions may not write a string.
    "noset": ["~charon:*", "+@all", "-set"],
    # Everything, but on another prefix's keys only.
    "otherkeys": ["~other:*", "+@all"],
    # Everything but INFO (a common hardening: -@dangerous drops it).
    "noinfo": ["~charon:*", "+@all", "-info"],
    # Gaps that only a signed-in session, a load or a listing would hit.
    "noreadonly": ["~charon:*", "+@all", "-fcall_ro"],
    "nozadd": ["~charon:*", "+@all", "-zadd"],
    "noget": ["~charon:*", "+@all", "-get"],
}


@pytest.fixture(scope="module")
def acl_server() -> Iterator[RedisServer]:
    if not require_redis():
        pytest.skip("redis-server is not installed")
    server = RedisServer().start()
    admin = server.client()
    for user, rules in RULES.items():
        admin.execute_command("ACL", "SETUSER", user, "reset", "on", f">{user}-pw", *rules)
    admin.close()
    yield server
    server.close()


def as_user(server: RedisServer, user: str, **extra: object):  # type: ignore[no-untyped-def]
    url = f"redis://{user}:{user}-pw@127.0.0.1:{server.port}/0"
    return override_settings(CHARON_SESSIONS={"URL": url, "SOCKET_TIMEOUT": 1, **extra})


def library(server: RedisServer, loaded: bool) -> None:
    admin = server.client()
    admin.function_flush()
    if loaded:
        admin.function_load(SOURCE, replace=True)
    admin.close()


def save_one() -> None:
    s = SessionStore()
    s["a"] = 1
    s.save()
    assert dict(SessionStore(s.session_key).items()) == {"a": 1}


def error_of(call) -> SessionStoreError:  # type: ignore[no-untyped-def]
    with pytest.raises(SessionStoreError) as info:
        call()
    assert not isinstance(info.value, RedisUnavailable), "a permission is not an outage"
    return info.value


def deploy_check() -> list[tuple[str, str]]:
    return [(m.id or "", f"{m.msg} {m.hint}") for m in deploy.check_redis()]


def test_caller_without_function_load(acl_server):
    library(acl_server, loaded=False)
    with as_user(acl_server, "caller"):
        message = str(error_of(save_one))
        assert "FUNCTION LOAD" in message
        assert "lacks a permission" in message
        found = deploy_check()
        assert [i for i, _ in found] == ["django_charon_sessions.E103"]
        assert "Grant the Redis user FUNCTION LOAD" in found[0][1]
        assert "LOAD_FUNCTIONS" in found[0][1]
    with as_user(acl_server, "caller", LOAD_FUNCTIONS=False):
        message = str(error_of(save_one))
        assert "LOAD_FUNCTIONS is off" in message
        assert "FUNCTION LOAD" in message
        assert [i for i, _ in deploy_check()] == ["django_charon_sessions.E104"]
    # An operator loads the library: the same user now works, and the check passes.
    library(acl_server, loaded=True)
    with as_user(acl_server, "caller", LOAD_FUNCTIONS=False):
        save_one()
        assert deploy_check() == []


async def test_caller_without_function_load_async(acl_server):
    library(acl_server, loaded=False)
    with as_user(acl_server, "caller"):
        s = SessionStore()
        await s.aset("a", 1)
        with pytest.raises(SessionStoreError) as info:
            await s.asave()
        assert "FUNCTION LOAD" in str(info.value)
        assert not isinstance(info.value, RedisUnavailable)


def test_user_without_fcall_gets_a_clear_error(acl_server):
    for loaded in (False, True):
        library(acl_server, loaded=loaded)
        with as_user(acl_server, "nobody"):
            message = str(error_of(save_one))
            assert "FCALL" in message
            assert "lacks a permission" in message


def test_deploy_check_says_to_grant_fcall(acl_server):
    library(acl_server, loaded=True)
    with as_user(acl_server, "nobody"):
        found = deploy_check()
    assert found, "the deploy check passed for a user who cannot call the functions"
    assert "FCALL" in found[0][1]


@pytest.mark.parametrize("user", ["noreadonly", "nozadd", "noget"])
def test_deploy_check_probes_what_signed_in_requests_need(acl_server, user):
    library(acl_server, loaded=True)
    with as_user(acl_server, user):
        found = deploy_check()
    assert [f[0] for f in found] == ["django_charon_sessions.E105"], found


def test_user_limited_to_other_keys(acl_server):
    library(acl_server, loaded=True)
    with as_user(acl_server, "otherkeys"):
        message = str(error_of(save_one))
        assert "'charon:*'" in message


def test_command_refused_inside_a_function_says_what_to_grant(acl_server):
    library(acl_server, loaded=True)
    with as_user(acl_server, "noset"):
        message = str(error_of(save_one))
    assert "lacks a permission" in message
    assert " SET," in message  # named among the commands to grant


def test_deploy_check_without_info_does_not_claim_redis_is_down(acl_server):
    library(acl_server, loaded=True)
    with as_user(acl_server, "noinfo"):
        save_one()  # sessions work
        found = deploy_check()
    assert "django_charon_sessions.E101" not in [i for i, _ in found]


@pytest.mark.parametrize(
    "reply",
    [
        # Redis 7.0.15 and Redis 8.2.3 (also Valkey 8.1 and 9.1), word for word.
        "The user executing the script can't run this command or subcommand script: "
        "charon_2b1098a79da9_create, on @user_function:328.",
        "ACL failure in script: User noset has no permissions to run the 'set' command "
        "script: charon_2b1098a79da9_create, on @user_function:328.",
    ],
)
def test_both_wordings_of_a_command_refused_inside_a_function(reply):
    # Each tox environment meets one wording from its real server (the test
    # above); this keeps the other one recognised there too.
    with override_settings(CHARON_SESSIONS={"URL": "redis://127.0.0.1:6379/0"}):
        error = translate(redis.exceptions.ResponseError(reply))
    assert not isinstance(error, RedisUnavailable)
    assert "lacks a permission" in str(error)
