"""Every key a function creates has an expiry, after every function (invariant 9).

A scenario of ordinary operations runs step by step; after each prefix of it,
every key in Redis must have a TTL.
"""

from __future__ import annotations

from typing import Any

import pytest

from django_charon_sessions import api
from django_charon_sessions.engine import SessionStore
from django_charon_sessions.keyspace import Keys
from django_charon_sessions.maintenance import cleanup


def signed_in(uid: str, **data: Any) -> SessionStore:
    s = SessionStore()
    s.update({"_auth_user_id": uid, **data})
    s.client_facts = '{"ip":"198.51.100.1"}'
    s.save()
    return s


def create(st: dict[str, Any]) -> None:
    st["anon"] = SessionStore()
    st["anon"]["cart"] = [1]
    st["anon"].save()
    st["first"] = signed_in("7", a=1)
    st["second"] = signed_in("7", b=1)


def save(st: dict[str, Any]) -> None:
    s = SessionStore(st["first"].session_key)
    s["a"] = 2
    s.save()
    SessionStore(st["first"].session_key).save()  # unchanged: only the expiry


def conflicting_save(st: dict[str, Any]) -> None:
    one, two = SessionStore(st["first"].session_key), SessionStore(st["first"].session_key)
    one._get_session()
    two._get_session()
    one["x"] = 1
    one.save()
    two["y"] = 1
    two.save()


def load_after_metadata_was_lost(st: dict[str, Any]) -> None:
    keys = Keys.for_session("charon", st["first"].session_key)
    st["backend"].admin.delete(keys.meta)  # evicted
    st["backend"].admin.setrange(keys.record, 0, "0000000000")  # "last seen" is due
    assert SessionStore(st["first"].session_key).load()


def password_change(st: dict[str, Any]) -> None:
    change = SessionStore(st["first"].session_key)
    change.cycle_key()
    change.save()
    st["first"] = change


def login(st: dict[str, Any]) -> None:
    s = SessionStore(st["anon"].session_key)
    s.cycle_key()
    s["_auth_user_id"] = "8"
    s.save()


def end_one(st: dict[str, Any]) -> None:
    assert api.end_session("7", api.public_id(st["second"].session_key))


def end_all_but_one(st: dict[str, Any]) -> None:
    st["third"] = signed_in("7", c=1)
    api.end_sessions("7", keep_session_key=st["third"].session_key)


def limit(st: dict[str, Any]) -> None:
    with st["backend"].settings(MAX_SESSIONS_PER_USER=1):
        signed_in("8", d=1)


def delete_and_clean(st: dict[str, Any]) -> None:
    SessionStore().delete(st["third"].session_key)
    cleanup()


def end_all(st: dict[str, Any]) -> None:
    api.end_sessions("8")


STEPS = [
    create,
    save,
    conflicting_save,
    load_after_metadata_was_lost,
    password_change,
    login,
    end_one,
    end_all_but_one,
    limit,
    delete_and_clean,
    end_all,
]


@pytest.mark.parametrize("upto", range(1, len(STEPS) + 1), ids=[f.__name__ for f in STEPS])
def test_no_key_is_left_without_expiry(backend, upto):
    state: dict[str, Any] = {"backend": backend}
    for step in STEPS[:upto]:
        step(state)
    keys = backend.keys()
    assert keys, "the scenario left nothing to check"
    assert [k for k in keys if backend.admin.pttl(k) < 0] == []
