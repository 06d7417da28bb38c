"""What Redis holds: hashes, never a usable session key (DESIGN invariants 3, 8)."""

from __future__ import annotations

import logging
import re

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client, override_settings
from redis.crc import key_slot

from django_charon_sessions import api
from django_charon_sessions.engine import SessionStore
from django_charon_sessions.keyspace import (
    SLOTS,
    TAG_LENGTH,
    Keys,
    UserKeys,
    activity_keys,
    activity_pattern,
    ended_pattern,
    index_pattern,
    is_valid_member,
    key_prefix,
    member_of,
    new_session_key,
    random_tag,
    record_pattern,
    retag,
    slot_keys_pattern,
    slot_of,
    slot_tag,
    user_tag,
    user_tags,
)

pytestmark = pytest.mark.django_db

_TAG_ALPHABET_RE = re.compile("[a-z2-7]")


def cookie(client: Client) -> str:
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def test_no_raw_session_key_anywhere_after_a_lifecycle(backend, caplog):
    caplog.set_level(logging.DEBUG)
    user = get_user_model().objects.create_user("ada", password="pw-ada-123456")
    seen: list[str] = []

    alice = Client()
    alice.get("/")  # anonymous visit
    seen.append(cookie(alice))
    alice.get("/set/theme/dark/")
    response = alice.post("/accounts/login/", {"username": "ada", "password": "pw-ada-123456"})
    assert response.status_code == 302
    seen.append(cookie(alice))
    alice.get("/")
    alice.post(
        "/accounts/password_change/",
        {
            "old_password": "pw-ada-123456",
            "new_password1": "a-Brand-new-pw-9",
            "new_password2": "a-Brand-new-pw-9",
        },
    )
    seen.append(cookie(alice))
    bob_device = Client()
    bob_device.login(username="ada", password="a-Brand-new-pw-9")
    seen.append(cookie(bob_device))
    third = Client()
    third.get("/")
    seen.append(cookie(third))

    assert len(set(seen)) == len(seen)
    dump = b"\n".join(backend.dump())
    assert dump, "the lifecycle left live sessions to inspect"
    for key in seen:
        assert key.encode() not in dump
        assert key[TAG_LENGTH:].encode() not in dump  # the secret, random part
    log_text = caplog.text
    for key in seen:
        assert key not in log_text
        assert key[TAG_LENGTH:] not in log_text
    # Members are hashes of the keys, and the user's sessions share its tag.
    live = [cookie(alice), cookie(bob_device)]
    for key in live:
        keys = Keys.for_session("charon", key)
        assert keys.member.encode() in dump
        assert key[:TAG_LENGTH] == user_tag(str(user.pk))
    index = Keys.for_session("charon", live[0]).index
    assert len(backend.admin.zrange(index, 0, -1)) == 2


def test_anonymous_sessions_are_not_indexed(backend):
    client = Client()
    client.get("/")
    keys = backend.keys()
    assert len(keys) == 1
    assert (
        keys[0]
        == Keys.for_session(
            "charon", client.cookies[settings.SESSION_COOKIE_NAME].value
        ).record.encode()
    )


def test_user_tag_is_keyed_and_survives_rotation():
    tag = user_tag("1")
    with override_settings(SECRET_KEY="another-secret-key-for-this-test"):
        assert user_tag("1") != tag  # the cookie does not reveal the id
        with override_settings(SECRET_KEY_FALLBACKS=[settings.SECRET_KEY]):
            assert user_tags("1")[1:] == []  # the fallback is this very key
    with override_settings(
        SECRET_KEY="rotated-secret-key-for-this-test", SECRET_KEY_FALLBACKS=[settings.SECRET_KEY]
    ):
        assert user_tags("1") == [user_tag("1"), tag]


def test_public_ids_are_safe_on_a_command_line():
    # A public id is passed as an argument to sessions_kill_user; one that
    # started with "-" would be read by argparse as an option.
    ids = {member_of(new_session_key(random_tag())) for _ in range(2000)}
    assert len(ids) == 2000
    for public_id in ids:
        assert is_valid_member(public_id)
        assert public_id[0].isalnum()
    assert not is_valid_member("-" + public_id[1:])


@pytest.mark.backends
def test_each_scan_pattern_finds_exactly_its_kind_of_key(backend):
    with backend.settings(SITE_ACTIVITY=True):
        _each_scan_pattern_finds_exactly_its_kind_of_key(backend)


def _each_scan_pattern_finds_exactly_its_kind_of_key(backend):
    kept, ended = SessionStore(), SessionStore()
    kept["_auth_user_id"], ended["_auth_user_id"] = "1", "2"
    kept.save()
    ended.save()
    api.end_sessions("2")  # user 2: its index moves into its ended set
    anonymous = SessionStore()
    anonymous["a"] = 1
    anonymous.save()
    prefix = key_prefix()
    one, two = (UserKeys.for_tag(prefix, user_tag(uid)) for uid in ("1", "2"))
    records = {Keys.for_session(prefix, s.session_key).record for s in (kept, ended, anonymous)}

    def found(pattern: str) -> set[str]:
        return {k.decode() for k in backend.admin.scan_iter(match=pattern, count=1000)}

    assert found(index_pattern(prefix)) == {one.index}
    assert found(ended_pattern(prefix)) == {two.ended}
    assert found(record_pattern(prefix)) == records
    activity = {*activity_keys(one.index), *activity_keys(two.index)}
    assert found(activity_pattern(prefix)) == {k for k in activity if k.endswith(":s")}
    everything = {k.decode() for k in backend.keys()}  # noqa: SIM118 - a scan
    assert everything == records | {one.index, one.meta, two.ended} | activity
    assert found(slot_keys_pattern(prefix)) == everything
    # Another prefix's keys match none of them, not even one that starts alike.
    assert found(slot_keys_pattern(prefix + "x")) == found(slot_keys_pattern(prefix[:-1])) == set()


def test_retag_moves_a_key_to_another_slot_and_keeps_its_kind():
    keys = Keys.for_session("site", new_session_key(random_tag()))
    tag = random_tag()
    moved = Keys.for_member("site", tag, keys.member)
    assert [retag(k, tag) for k in (keys.record, keys.index, keys.meta)] == [
        moved.record, moved.index, moved.meta,
    ]  # fmt: skip


def test_each_slot_tag_lives_in_its_slot():
    for slot in range(SLOTS):
        tag = slot_tag(slot)
        assert key_slot(f"charon:{{{tag}}}:s".encode()) == slot
        assert not _TAG_ALPHABET_RE.search(tag)  # never taken for a user's tag
    for uid in map(str, range(200)):
        tag = user_tag(uid)
        index = UserKeys.for_tag("charon", tag).index
        assert {key_slot(k.encode()) for k in activity_keys(index)} == {key_slot(index.encode())}
        assert slot_of(tag) == key_slot(index.encode())
