"""Stored data is sealed and bound to its session (DESIGN invariant 4).

A record is ``SSSSSSSSSS,V,C,N:U<mac><body>`` (see django_charon_sessions/lua/
charon.lua). These tests play someone who can write to Redis but does not
know ``SECRET_KEY``: whatever they change, copy or splice must read as no
session, be logged to ``django.security.SuspiciousSession`` without the
session's key or contents, and leave the stored record as it was.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, replace

import pytest
from django.conf import settings
from django.contrib.sessions.serializers import JSONSerializer
from django.test import Client, override_settings

from django_charon_sessions import api
from django_charon_sessions.codec import MAC_LENGTH, BadRecordError, Codec, _mac, now
from django_charon_sessions.engine import SessionStore
from django_charon_sessions.keyspace import TAG_LENGTH, Keys
from django_charon_sessions.state import context

SECURITY = "django.security.SuspiciousSession"
OLD_SECRET = "old-secret-key-0123456789-abcdefghijklmnop"
NEW_SECRET = "new-secret-key-abcdefghijklmnop-0123456789"

# The header as the Lua library's documentation describes it, parsed here on
# its own rather than with the codec's pattern.
_HEADER = re.compile(rb"(\d{10}),(\d+),(\d+),(\d+):")


@dataclass(frozen=True)
class Raw:
    """A stored record taken apart, to be changed and put back together."""

    seen: int
    version: int
    created: int
    user: bytes
    mac: bytes
    body: bytes

    @classmethod
    def parse(cls, value: bytes) -> Raw:
        head = _HEADER.match(value)
        assert head is not None, value[:40]
        seen, version, created, length = (int(g) for g in head.groups())
        rest = value[head.end() :]
        user, sealed = rest[:length], rest[length:]
        return cls(seen, version, created, user, sealed[:MAC_LENGTH], sealed[MAC_LENGTH:])

    def __bytes__(self) -> bytes:
        return b"%010d,%d,%d,%d:%s%s%s" % (
            self.seen,
            self.version,
            self.created,
            len(self.user),
            self.user,
            self.mac,
            self.body,
        )

    def data(self) -> dict[str, object]:
        return json.loads(self.body)  # type: ignore[no-any-return]


def stored(data: dict[str, object]) -> SessionStore:
    s = SessionStore()
    s.update(data)
    s.save()
    return s


def keys_of(session_key: str, prefix: str = "charon") -> Keys:
    return Keys.for_session(prefix, session_key)


def raw(backend, session_key: str, prefix: str = "charon") -> bytes:
    value = backend.admin.get(keys_of(session_key, prefix).record)
    assert value is not None
    return value  # type: ignore[no-any-return]


def put(backend, session_key: str, value: bytes | Raw, prefix: str = "charon") -> None:
    """Overwrite a record as a Redis writer would, keeping its expiry."""
    record = keys_of(session_key, prefix).record
    assert backend.admin.ttl(record) > 0
    assert backend.admin.set(record, bytes(value), keepttl=True)


def body(data: dict[str, object]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def assert_no_session(
    backend, caplog, session_key: str, *secrets: str, prefix: str = "charon"
) -> None:
    """Load ``session_key``: no session, one log line without secrets, nothing changed."""
    keys = keys_of(session_key, prefix)
    before = backend.admin.get(keys.record)
    assert before is not None
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=SECURITY):
        loaded = SessionStore(session_key)
        assert dict(loaded.items()) == {}
    assert loaded.session_key is None  # a later save starts a new session
    logged = [r for r in caplog.records if r.name == SECURITY]
    assert len(logged) == 1
    assert keys.member[:8] in logged[0].getMessage()  # says which one, and no more
    for secret in (session_key, session_key[TAG_LENGTH:], keys.member, *secrets):
        assert secret not in caplog.text
    # Left as it was, for inspection: no delete, no rewrite, same expiry.
    assert backend.admin.get(keys.record) == before
    assert backend.admin.ttl(keys.record) > 0


# -- changed bytes ------------------------------------------------------------------


def test_tampered_body_reads_as_empty_and_is_logged(backend, caplog):
    s = stored({"role": "user", "secret-note": "do not log me"})
    value = raw(backend, s.session_key)
    assert value.count(b'"role":"user"') == 1
    put(backend, s.session_key, value.replace(b'"role":"user"', b'"role":"root"'))
    assert_no_session(backend, caplog, s.session_key, "root", "do not log me")


def test_tampered_session_gives_the_view_an_empty_session(backend):
    client = Client()
    client.get("/set/role/user/")
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    truncated = raw(backend, key)[:-3]
    put(backend, key, truncated)
    response = client.get("/session.json")
    assert response.status_code == 200
    assert response.json() == {"data": {}}
    # The next change goes to a new session; the damaged record stays as it was.
    assert client.get("/set/role/admin/").status_code == 200
    new = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert new != key
    assert dict(SessionStore(new).items()) == {"role": "admin"}
    assert raw(backend, key) == truncated


def test_sealed_user_id_that_is_not_utf8_is_rejected(backend, caplog):
    """Defence in depth: even a correct MAC over a user id that is not UTF-8 fails."""
    s = stored({"_auth_user_id": "alice-7", "x": "do not log me"})
    record = Raw.parse(raw(backend, s.session_key))
    user = b"\xc3("
    mac = _mac(context().codec.key, keys_of(s.session_key).member.encode(), user,
               record.created, record.body)  # fmt: skip
    put(backend, s.session_key, replace(record, user=user, mac=mac))
    assert_no_session(backend, caplog, s.session_key, "do not log me")


# -- records from elsewhere ---------------------------------------------------------


@pytest.mark.parametrize(
    ("victim", "attacker"),
    [
        ({"_auth_user_id": "alice-7"}, {"_auth_user_id": "mallory"}),
        ({"cart": "alice's cart"}, {"_auth_user_id": "mallory"}),
        ({"cart": "alice's cart"}, {"cart": "mallory's cart"}),
    ],
    ids=["signed-in to signed-in", "anonymous to signed-in", "anonymous to anonymous"],
)
def test_record_copied_from_another_session_is_rejected(backend, caplog, victim, attacker):
    a = stored(victim)
    b = stored(attacker)
    put(backend, b.session_key, raw(backend, a.session_key))
    assert_no_session(backend, caplog, b.session_key, "alice", "mallory", a.session_key)
    # The session it came from is unharmed.
    assert dict(SessionStore(a.session_key).items()) == victim


def test_record_from_another_key_prefix_is_rejected(backend, caplog):
    """Two sites on one Redis: a session's record moved to the other site's key fails."""
    with backend.settings(KEY_PREFIX="site-a"):
        a = stored({"site": "site-a secret"})
        value = raw(backend, a.session_key, "site-a")
    with backend.settings(KEY_PREFIX="site-b"):
        # The same cookie value, so the same member: only the prefix tells them apart.
        backend.admin.set(keys_of(a.session_key, "site-b").record, value, px=60_000)
        assert_no_session(backend, caplog, a.session_key, "site-a secret", prefix="site-b")
    with backend.settings(KEY_PREFIX="site-a"):
        assert dict(SessionStore(a.session_key).items()) == {"site": "site-a secret"}


# -- replays ------------------------------------------------------------------------


def test_whole_record_replay_is_the_limit_of_what_a_mac_can_do(backend):
    """A Redis writer can put back an older record whole: without server state the
    writer cannot reach (the record is all the server keeps), nothing tells it
    from the real one, so this is accepted by design.
    What stops it for a signed-in session is the user's index: once the session
    was ended, the old record no longer counts."""
    s = stored({"_auth_user_id": "alice-7", "cart": "old cart"})
    old = raw(backend, s.session_key)
    s["cart"] = "new cart"
    s.save()
    assert raw(backend, s.session_key) != old
    put(backend, s.session_key, old)
    assert dict(SessionStore(s.session_key).items()) == {
        "_auth_user_id": "alice-7",
        "cart": "old cart",
    }
    assert api.end_sessions("alice-7") == 1
    backend.admin.set(keys_of(s.session_key).record, old, px=60_000)
    assert dict(SessionStore(s.session_key).items()) == {}
    assert backend.admin.get(keys_of(s.session_key).record) is None


SPLICES = {
    # The newer header and MAC, with part of the session taken back.
    "a key dropped from the body": lambda old, new: replace(
        new, body=body({k: v for k, v in new.data().items() if k != "paid"})
    ),
    "a value swapped back from the older record": lambda old, new: replace(
        new, body=body({**new.data(), "cart": old.data()["cart"]})
    ),
    "the older body under the newer header and MAC": lambda old, new: replace(new, body=old.body),
    "the newer body under the older header and MAC": lambda old, new: replace(old, body=new.body),
}


@pytest.mark.parametrize("splice", list(SPLICES))
def test_replay_of_part_of_a_session_is_rejected(backend, caplog, splice):
    """With one MAC over the whole session nothing less than a whole record can be
    replayed: a body put together from parts of two records fails."""
    s = stored({"_auth_user_id": "alice-7", "cart": "old cart", "paid": False})
    old = Raw.parse(raw(backend, s.session_key))
    s["cart"] = "new cart"
    s["paid"] = True
    s.save()
    new = Raw.parse(raw(backend, s.session_key))
    assert new.mac != old.mac
    spliced = SPLICES[splice](old, new)
    assert bytes(spliced) not in (bytes(old), bytes(new))
    assert JSONSerializer().loads(spliced.body)  # still a valid session body
    put(backend, s.session_key, spliced)
    assert_no_session(backend, caplog, s.session_key, "old cart", "new cart", "alice")


# -- the header ---------------------------------------------------------------------


@pytest.mark.parametrize("user", [b"alice-8", b"mallory", b"bob"])
def test_user_changed_in_the_header_is_rejected(backend, caplog, user):
    s = stored({"_auth_user_id": "alice-7", "note": "do not log me"})
    record = Raw.parse(raw(backend, s.session_key))
    assert record.user == b"alice-7"
    put(backend, s.session_key, replace(record, user=user))
    assert_no_session(backend, caplog, s.session_key, "alice", user.decode(), "do not log me")


@pytest.mark.parametrize("how", ["index entry removed", "user's sessions ended"])
def test_user_removed_from_a_signed_in_record_is_rejected(backend, caplog, how):
    """N=0 makes the record look anonymous, so Redis no longer checks the user's
    index; without the user in the MAC the session would survive "log out
    everywhere". It must read as no session."""
    s = stored({"_auth_user_id": "alice-7", "note": "do not log me"})
    keys = keys_of(s.session_key)
    record = Raw.parse(raw(backend, s.session_key))
    put(backend, s.session_key, replace(record, user=b""))
    assert raw(backend, s.session_key).startswith(b"%010d,1,%d,0:" % (record.seen, record.created))
    if how == "index entry removed":
        assert backend.admin.zrem(keys.index, keys.member) == 1
    else:
        assert api.end_sessions("alice-7") == 1
    assert backend.admin.zscore(keys.index, keys.member) is None
    assert_no_session(backend, caplog, s.session_key, "alice", "do not log me")


def test_creation_time_moved_to_extend_the_absolute_lifetime_is_rejected(backend, caplog):
    lifetime = 3600
    with backend.settings(ABSOLUTE_MAX_AGE=lifetime):
        s = stored({"_auth_user_id": "alice-7", "note": "do not log me"})
        keys = keys_of(s.session_key)
        codec = context().codec
        record = Raw.parse(raw(backend, s.session_key))

        def genuine(created: int) -> Raw:
            """The record as if the engine had created it at ``created``."""
            sealed = codec.seal(keys.member, "alice-7", created, record.body)
            return replace(record, created=created, mac=sealed[:MAC_LENGTH])

        # A record a minute from the end of its lifetime is genuine and loads ...
        put(backend, s.session_key, genuine(now() - lifetime + 60))
        assert dict(SessionStore(s.session_key).items())["note"] == "do not log me"
        # ... one past it, with its creation time moved to now, does not.
        expired = genuine(now() - lifetime - 1)
        put(backend, s.session_key, replace(expired, created=now()))
        assert_no_session(backend, caplog, s.session_key, "alice", "do not log me")
        # Unchanged, it is simply over: deleted, and nothing to log.
        put(backend, s.session_key, expired)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger=SECURITY):
            assert dict(SessionStore(s.session_key).items()) == {}
        assert caplog.records == []
        assert backend.admin.get(keys.record) is None


# -- SECRET_KEY rotation ------------------------------------------------------------


def test_rotated_secret_in_fallbacks_is_accepted_and_resealed_on_save(backend):
    with override_settings(SECRET_KEY=OLD_SECRET):
        s = stored({"_auth_user_id": "12", "a": 1})
    before = Raw.parse(raw(backend, s.session_key))
    with override_settings(SECRET_KEY=NEW_SECRET, SECRET_KEY_FALLBACKS=[OLD_SECRET]):
        loaded = SessionStore(s.session_key)
        assert dict(loaded.items()) == {"_auth_user_id": "12", "a": 1}
        loaded.save()  # no change to the data: still sealed anew
        assert loaded.session_key == s.session_key  # the old tag is still valid
    after = Raw.parse(raw(backend, s.session_key))
    assert after.body == before.body
    assert after.mac != before.mac
    assert after.version == before.version + 1
    with override_settings(SECRET_KEY=NEW_SECRET, SECRET_KEY_FALLBACKS=[]):
        assert dict(SessionStore(s.session_key).items()) == {"_auth_user_id": "12", "a": 1}


def test_rotated_secret_no_longer_in_fallbacks_is_rejected(backend, caplog):
    with override_settings(SECRET_KEY=OLD_SECRET):
        s = stored({"a": "do not log me"})
    with override_settings(SECRET_KEY=NEW_SECRET, SECRET_KEY_FALLBACKS=[OLD_SECRET]):
        assert dict(SessionStore(s.session_key).items()) == {"a": "do not log me"}
    with override_settings(SECRET_KEY=NEW_SECRET, SECRET_KEY_FALLBACKS=[]):
        assert_no_session(backend, caplog, s.session_key, "do not log me")


# -- the serializer -----------------------------------------------------------------


@pytest.mark.parametrize("serializer", ["django.contrib.sessions.serializers.JSONSerializer"])
def test_session_serializer_setting_is_used(backend, serializer):
    with override_settings(SESSION_SERIALIZER=serializer):
        s = stored({"n": [1, 2]})
        assert raw(backend, s.session_key).endswith(JSONSerializer().dumps({"n": [1, 2]}))


def test_fast_json_path_writes_what_djangos_serializer_writes():
    codec = Codec(JSONSerializer(), "charon")
    values = [0, -1.5, "é☃\u2028", {"a": [1, None, True]}, [], 'q"uote\\', 10**30]
    for value in values:
        assert codec.dumps(value) == JSONSerializer().dumps(value)
    session = {f"k{n}": v for n, v in enumerate(values)}
    assert codec.dumps(session) == JSONSerializer().dumps(session)
    assert codec.loads(codec.dumps(session)) == session
    for not_a_session in (b"[1]", b'"x"', b"null", b"{", b"\xff"):
        with pytest.raises(BadRecordError):
            codec.loads(not_a_session)
