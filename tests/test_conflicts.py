"""The version protocol: concurrent saves re-apply their changes, never lock.

Each test plays two (or more) requests with their own store objects and fixes
the order of their steps, so the conflict path runs every time.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.exceptions import SessionInterrupted

from django_charon_sessions import api
from django_charon_sessions.engine import SAVE_ATTEMPTS, SessionStore
from django_charon_sessions.exceptions import SaveConflict
from django_charon_sessions.keyspace import Keys


def stored(data: dict[str, Any]) -> str:
    s = SessionStore()
    s.update(data)
    s.save()
    assert s.session_key is not None
    return s.session_key


def loaded(key: str) -> SessionStore:
    """A request that has read its session."""
    s = SessionStore(key)
    s._get_session()
    return s


def version(backend: Any, key: str) -> int:
    value = backend.admin.get(Keys.for_session("charon", key).record)
    return int(value.split(b",")[1])


def test_a_conflict_costs_one_more_call_and_keeps_both(backend):
    key = stored({"a": 0})
    first, second = loaded(key), loaded(key)
    first["a"] = 1
    first.save()
    second["b"] = 2
    second.save()  # its version is stale: Redis answers with the newer record
    assert dict(SessionStore(key).items()) == {"a": 1, "b": 2}
    assert version(backend, key) == 3  # create, first, second's retry


def test_an_in_place_edit_of_a_nested_value_is_kept(backend):
    key = stored({"cart": [1], "x": 0})
    editor, other = loaded(key), loaded(key)
    other["x"] = 1
    other.save()
    editor["cart"].append(2)  # Django's `modified` flag stays False here
    editor.save()
    assert dict(SessionStore(key).items()) == {"cart": [1, 2], "x": 1}


def test_values_python_calls_equal_are_still_changes(backend):
    # 1 == True == 1.0 in Python; serialized they differ, and so must the merge.
    key = stored({"flag": 1, "n": 1})
    changer, other = loaded(key), loaded(key)
    other["unrelated"] = "x"
    other.save()
    changer["flag"] = True
    changer["n"] = 1.0
    changer.save()
    stored_now = dict(SessionStore(key).items())
    assert stored_now["flag"] is True
    assert isinstance(stored_now["n"], float)
    assert stored_now["unrelated"] == "x"


def test_a_key_deleted_by_one_and_changed_by_another(backend):
    key = stored({"a": 1, "b": 1})
    deleter, changer = loaded(key), loaded(key)
    changer["b"] = 2
    changer.save()
    del deleter["a"]
    deleter.save()
    assert dict(SessionStore(key).items()) == {"b": 2}


def test_same_key_last_writer_wins_through_the_conflict(backend):
    key = stored({"x": 0})
    first, second = loaded(key), loaded(key)
    first["x"] = "first"
    first.save()
    second["x"] = "second"
    second.save()
    assert SessionStore(key)["x"] == "second"


def test_an_unchanged_save_after_another_save_keeps_it(backend):
    # SESSION_SAVE_EVERY_REQUEST: a read-only request saves too.
    key = stored({"x": 0})
    reader, writer = loaded(key), loaded(key)
    writer["x"] = 1
    writer.save()
    backend.admin.pexpire(Keys.for_session("charon", key).record, 5_000)
    reader.save()  # version-guarded: rebased onto the newer record, then only the expiry
    assert SessionStore(key)["x"] == 1
    assert backend.admin.pttl(Keys.for_session("charon", key).record) > 5_000


def test_a_conflict_against_an_ended_session_is_update_error(backend):
    key = stored({"_auth_user_id": "9", "a": 0})
    late, other = loaded(key), loaded(key)
    other["a"] = 1
    other.save()  # late's version is now stale ...
    api.end_sessions("9")  # ... and the session is ended: liveness is checked first
    late["b"] = 2
    with pytest.raises(UpdateError):
        late.save()
    assert dict(SessionStore(key).items()) == {}
    assert api.list_sessions("9") == []


def test_a_login_cycle_racing_another_tabs_save_keeps_that_save(backend):
    key = stored({"cart": [1]})
    login, tab = loaded(key), loaded(key)
    tab["theme"] = "dark"
    tab.save()
    # What django.contrib.auth.login() does.
    login.cycle_key()
    login["_auth_user_id"] = "31"
    login.save()
    assert dict(SessionStore(login.session_key).items()) == {
        "cart": [1],
        "theme": "dark",
        "_auth_user_id": "31",
    }
    assert not SessionStore().exists(key)


def test_a_password_change_cycle_racing_another_tabs_save_keeps_that_save(backend):
    key = stored({"_auth_user_id": "32", "_auth_user_hash": "old"})
    change, tab = loaded(key), loaded(key)
    tab["theme"] = "dark"
    tab.save()
    # What update_session_auth_hash() does.
    change.cycle_key()
    change["_auth_user_hash"] = "new"
    change.save()
    assert dict(SessionStore(change.session_key).items()) == {
        "_auth_user_id": "32",
        "_auth_user_hash": "new",
        "theme": "dark",
    }
    assert [s.id for s in api.list_sessions("32")] == [api.public_id(change.session_key)]


def test_a_cycle_of_an_ended_session_raises_and_creates_nothing(backend):
    key = stored({"_auth_user_id": "33"})
    change = loaded(key)
    api.end_sessions("33")
    with pytest.raises(SessionInterrupted):
        change.cycle_key()
    assert api.list_sessions("33") == []
    assert [k for k in backend.keys() if b"}r" in k] == []  # noqa: SIM118


def test_a_login_over_an_anonymous_session_deleted_meanwhile_drops_its_data(backend):
    key = stored({"cart": [1]})
    login = loaded(key)
    SessionStore(key).delete()  # logged out (or expired) in another tab
    login.cycle_key()
    login["_auth_user_id"] = "34"
    login.save()
    # The deleted session's data is not written back under the new key.
    assert dict(SessionStore(login.session_key).items()) == {"_auth_user_id": "34"}


class Contended(SessionStore):
    """A request whose every save loses the race to another request's save."""

    rivals = 0

    def _rebase(self, keys: Any, newer_value: bytes) -> None:
        super()._rebase(keys, newer_value)
        rival = loaded(self._session_key)
        rival["rival"] = Contended.rivals = Contended.rivals + 1
        rival.save()  # lands between this request's retries


def test_retries_run_out_with_the_documented_exception(backend):
    key = stored({"x": 0})
    Contended.rivals = 0
    loser = Contended(key)
    loser._get_session()
    first = loaded(key)
    first["x"] = 1
    first.save()  # the first conflict
    loser["mine"] = True
    with pytest.raises(SaveConflict, match="changes were not saved"):
        loser.save()
    after = dict(SessionStore(key).items())
    assert "mine" not in after
    assert after["x"] == 1
    assert after["rival"] == Contended.rivals == SAVE_ATTEMPTS  # one per conflict


async def test_async_conflict_keeps_both(backend):
    key = stored({"a": 0})
    first, second = SessionStore(key), SessionStore(key)
    await first._aget_session()
    await second._aget_session()
    await first.aset("a", 1)
    await first.asave()
    await second.aset("b", 2)
    await second.asave()
    assert dict(await SessionStore(key).aitems()) == {"a": 1, "b": 2}


async def test_async_login_cycle_keeps_a_racing_save(backend):
    key = stored({"cart": [1]})
    login, tab = SessionStore(key), SessionStore(key)
    await login._aget_session()
    await tab._aget_session()
    await tab.aset("theme", "dark")
    await tab.asave()
    await login.acycle_key()
    await login.aset("_auth_user_id", "35")
    await login.asave()
    assert dict(await SessionStore(login.session_key).aitems()) == {
        "cart": [1],
        "theme": "dark",
        "_auth_user_id": "35",
    }


# -- found by review -------------------------------------------------------------


def test_cycle_after_clear_without_load_still_ends_the_old_key(backend):
    # clear() fills the data without a load; login() then calls cycle_key().
    key = stored({"_auth_user_id": "61", "x": 1})
    s = SessionStore(key)
    s.clear()
    s.cycle_key()
    s["_auth_user_id"] = "62"
    s.save()
    assert not SessionStore().exists(key)
    assert dict(SessionStore(key).items()) == {}
    assert api.list_sessions("61") == []
    assert [x.id for x in api.list_sessions("62")] == [api.public_id(s.session_key)]


def test_must_create_on_a_pending_key_lands_in_the_users_slot(backend):
    key = stored({"a": 1})
    s = loaded(key)
    s.cycle_key()
    s["_auth_user_id"] = "63"
    s.save(must_create=True)
    assert [x.id for x in api.list_sessions("63")] == [api.public_id(s.session_key)]
    assert api.end_sessions("63") == 1


def test_save_after_own_delete_does_not_bring_the_session_back(backend):
    key = stored({"_auth_user_id": "64", "z": 1})
    s = loaded(key)
    s.delete()  # not flush(): the data stays in memory
    s["z"] = 2
    with pytest.raises(UpdateError):
        s.save()
    assert api.list_sessions("64") == []
    assert [k for k in backend.keys() if b"}r" in k] == []  # noqa: SIM118


def test_data_set_without_load_on_an_ended_session_is_update_error(backend):
    key = stored({"_auth_user_id": "65"})
    s = SessionStore(key)
    s.clear()
    s["_auth_user_id"] = "65"
    api.end_sessions("65")
    with pytest.raises(UpdateError):
        s.save()
    assert api.list_sessions("65") == []
