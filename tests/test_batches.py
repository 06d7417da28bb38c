"""Batches: what cleanup and the importer send, on every backend (issue 13).

Cleanup and its async twin run the same plans; a batch spans a Cluster's
nodes and keeps its replies in order; an error reply inside a batch never
leaves a reply behind for the connection's next user.
"""

from __future__ import annotations

import time

import pytest

from django_charon_sessions import api, batches
from django_charon_sessions.client import get_async_client, get_client
from django_charon_sessions.engine import SessionStore
from django_charon_sessions.exceptions import SessionStoreError
from django_charon_sessions.keyspace import Keys, key_prefix, random_tag
from django_charon_sessions.maintenance import acleanup, cleanup

pytestmark = pytest.mark.backends


def _signed_in(uid: str, expiry: int | None = None) -> str:
    s = SessionStore()
    s["_auth_user_id"] = uid
    if expiry is not None:
        s.set_expiry(expiry)
    s.save()
    assert s.session_key is not None
    return s.session_key


@pytest.fixture
def stale(backend):
    """User 1: 1 expired, 1 vanished and 2 live entries; user 2: 2 ended sessions."""
    _signed_in("1", expiry=1)
    live = [_signed_in("1") for _ in range(3)]
    backend.admin.delete(Keys.for_session(key_prefix(), live[0]).record)  # evicted
    _signed_in("2"), _signed_in("2")
    api.end_sessions("2")
    time.sleep(1.1)


def _totals(report):
    return (
        report.indexes, report.expired, report.vanished, report.ended_purged,
        report.live_sessions, report.users,
    )  # fmt: skip


async def test_acleanup_decides_what_cleanup_decides(backend, stale):
    # batch_size 1: one plan per SCAN step.
    expected = (1, 1, 1, 2, 2, 1)  # user 2 has no index left, only ended sessions
    assert _totals(cleanup(dry_run=True, batch_size=1)) == expected
    assert _totals(await acleanup(dry_run=True, batch_size=1)) == expected
    assert _totals(await acleanup(batch_size=1)) == expected
    assert _totals(cleanup()) == (1, 0, 0, 0, 2, 1)  # nothing left
    assert [k for k in backend.keys() if k.endswith(b":x")] == []  # noqa: SIM118


def _spread(n: int) -> list[str]:
    # Keys in as many slots as there are tags: every node of a Cluster.
    return [Keys.for_member(key_prefix(), random_tag(), "0" * 26).record for _ in range(n)]


def test_a_batch_spans_every_node_and_keeps_its_order(backend):
    names = _spread(60)
    client = get_client()
    assert len(batches.send(client, [("SET", k, str(n)) for n, k in enumerate(names)])) == 60
    replies = batches.send(client, [("GET", k) for k in reversed(names)])
    assert replies == [str(n).encode() for n in reversed(range(60))]


async def test_an_async_batch_spans_every_node_and_keeps_its_order(backend):
    names = _spread(60)
    client = get_async_client()
    await batches.asend(client, [("SET", k, str(n)) for n, k in enumerate(names)])
    replies = await batches.asend(client, [("GET", k) for k in reversed(names)])
    assert replies == [str(n).encode() for n in reversed(range(60))]


def _error_in_the_middle(backend) -> tuple[list[tuple[str, ...]], str]:
    first, text, last = _spread(3)
    backend.admin.set(first, "a")
    backend.admin.set(text, "not a number")
    backend.admin.set(last, "z")
    return [("GET", first), ("INCR", text), ("GET", last)], first


def test_an_error_reply_leaves_no_reply_behind(backend):
    batch, first = _error_in_the_middle(backend)
    client = get_client()
    with pytest.raises(SessionStoreError, match="not an integer"):
        batches.send(client, batch)
    # The next user of the pool's connection reads its own reply, not "z".
    assert batches.send(client, [("GET", first)]) == [b"a"]


async def test_an_async_error_reply_leaves_no_reply_behind(backend):
    batch, first = _error_in_the_middle(backend)
    client = get_async_client()
    with pytest.raises(SessionStoreError, match="not an integer"):
        await batches.asend(client, batch)
    assert await batches.asend(client, [("GET", first)]) == [b"a"]
