"""The engine's operations as plans: generators of Redis function calls.

A plan yields :class:`~.calls.Call` objects and is sent their replies, so one
plan serves the sync and the async store: :func:`drive` sends its calls on the
sync client, :func:`adrive` on the event loop's async client.

A plan takes what it needs as arguments, nothing else:

- ``stored``, the store's view of its record (:class:`~.state.Stored`), which
  the plan updates. An imported key's tag must have been resolved;
- ``data``, the session data, already loaded (or set without a load). When
  another request saved meanwhile, the plan has the store apply this
  request's changes to the newer record (``rebase``, see
  :meth:`.Stored.rebase`), which rewrites ``data`` in place;
- ``age``, the store's expiry age in seconds (it may change with a rebase);
- ``facts``, the request facts stored with a signed-in session.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.contrib.sessions.exceptions import SessionInterrupted

from . import calls
from .client import get_async_client, get_client
from .codec import Record, now, user_of
from .exceptions import SaveConflict
from .keyspace import Keys, is_engine_key, new_session_key, random_tag, user_tag
from .signals import REASON_LIMIT, send_ended
from .state import Stored, context, open_record

if TYPE_CHECKING:
    from collections.abc import Callable, Generator

    Steps = Generator["calls.Call[Any]", Any, Any]
    Age = Callable[[], float]
    Rebase = Callable[[Keys, bytes], None]

#: How often a create draws a new key after a collision before giving up.
CREATE_ATTEMPTS = 20
#: How often a save re-applies its changes to a newer record before giving up.
SAVE_ATTEMPTS = 5

logger = logging.getLogger("django_charon_sessions")


def drive(steps: Steps) -> Any:
    """Run a plan of calls on the sync client; return what the plan returns."""
    client = get_client()
    try:
        call = next(steps)
        while True:
            call = steps.send(calls.run(client, call))
    except StopIteration as done:
        return done.value


async def adrive(steps: Steps) -> Any:
    """Run a plan of calls on the event loop's async client."""
    client = get_async_client()
    try:
        call = next(steps)
        while True:
            call = steps.send(await calls.arun(client, call))
    except StopIteration as done:
        return done.value


def _ms(age: Age) -> int:
    return int(age() * 1000)


# -- load -------------------------------------------------------------------


def load(stored: Stored, facts: str) -> Steps:
    """Plan a load: return the data stored under the key, or ``{}`` (and drop the key)."""
    if stored.pending:
        return {}  # nothing stored yet
    ctx = context()
    keys = stored.keys(ctx.prefix)
    if keys is None:
        stored.forget()
        return {}
    value = yield calls.load(keys, ctx.touch, ctx.absolute, facts, ctx.activity)
    opened = None if value is None else open_record(keys, value)
    if opened is None:
        stored.forget()
        return {}
    stored.record, data = opened
    return data


# -- save -------------------------------------------------------------------


def save(
    stored: Stored, data: dict[str, Any], must_create: bool, age: Age, rebase: Rebase, facts: str
) -> Steps:
    """Plan a save; return whether it created the session under a key drawn here."""
    key = stored.key
    if key is None:
        return (yield from create(stored, data, age, facts))
    if must_create:
        uid = user_of(data)
        if stored.pending and not stored.read:
            stored.settle(uid)
        if not is_engine_key(stored.key) or not stored.belongs(uid):
            return (yield from create(stored, data, age, facts))  # a key in the user's slot
        yield from _write_new(stored, data, age, facts)
        return False
    seconds = age()
    if seconds <= 0:
        # A negative or past expiry ends the session, as Django's own
        # engines do when given a timeout that has run out.
        yield from delete(stored)
        return False
    if stored.pending:
        return (yield from _save_pending(stored, data, age, facts))
    ctx = context()
    keys = stored.keys(ctx.prefix)
    if keys is None:
        return (yield from create(stored, data, age, facts))
    if stored.record is None:
        # Data set without a load (clear() first, say), or this store
        # deleted its session: read the record's version, then replace
        # what it holds. A session that is gone stays gone, as with
        # Django's db engine (UpdateError), never re-created from memory.
        value = yield calls.load(keys, ctx.touch, ctx.absolute, facts, ctx.activity)
        opened = None if value is None else open_record(keys, value)
        if opened is None:
            stored.forget()
            raise UpdateError
        stored.record = opened[0]
    uid = user_of(data)
    # A session stays where it was stored for its user; only a new user
    # id needs its tag checked.
    if uid != stored.record.user and not stored.belongs(uid):
        return (yield from _move(stored, keys, data, age, rebase, facts))
    yield from _update(stored, keys, data, int(seconds * 1000), age, rebase)
    return False


def _update(
    stored: Stored, keys: Keys, data: dict[str, Any], ttl: int, age: Age, rebase: Rebase
) -> Steps:
    """Replace the loaded version of the record, or only move its expiry if nothing changed."""
    ctx = context()
    for attempt in range(SAVE_ATTEMPTS):
        if attempt:
            ttl = _ms(age)  # the newer record may have its own expiry
        loaded = stored.record
        assert loaded is not None
        uid = user_of(data)
        body = ctx.codec.dumps(data)
        unchanged = body == loaded.body and uid == loaded.user and not loaded.stale_key
        version = loaded.version
        record = b""
        if not unchanged:
            record = ctx.codec.record(
                keys.member, uid, loaded.created, body, version + 1, loaded.last_seen
            )
        reply = yield calls.save(keys, version, ttl, uid, record, ctx.absolute)
        if isinstance(reply, bytes):
            rebase(keys, reply)
            continue
        if reply < 0:
            stored.forget()
            raise UpdateError
        if not unchanged:
            stored.record = Record(version + 1, uid, loaded.created, loaded.last_seen, body, False)
        return None
    raise SaveConflict(
        f"The session changed in {SAVE_ATTEMPTS} other requests while this one tried "
        "to save it; this request's changes were not saved."
    )


def _write_new(stored: Stored, data: dict[str, Any], age: Age, facts: str) -> Steps:
    """Create the record of the key; raise ``CreateError`` if the key exists."""
    ctx = context()
    assert stored.key is not None
    keys = Keys.for_session(ctx.prefix, stored.key)
    uid = user_of(data)
    created = now()
    body = ctx.codec.dumps(data)
    record = ctx.codec.record(keys.member, uid, created, body, 1, created)
    facts = facts if uid is not None else ""
    reply = yield calls.create(
        keys, _ms(age), uid, created, record, facts, ctx.absolute, ctx.limit, ctx.activity
    )
    if reply == 0:
        raise CreateError
    stored.pending = stored.read = False
    if reply < 0:  # expired on arrival, as with Django's engines: not stored
        stored.record = None
        return None
    stored.record = Record(1, uid, created, created, body, False)
    if uid is not None and reply > 1:
        send_ended(None, uid, reply - 1, REASON_LIMIT)
    return None


def create(stored: Stored, data: dict[str, Any], age: Age, facts: str) -> Steps:
    """Plan create(): write the data under a new key in the slot it belongs to; return True."""
    uid = user_of(data)
    for _ in range(CREATE_ATTEMPTS):
        stored.rekey(new_session_key(user_tag(uid) if uid is not None else random_tag()))
        try:
            yield from _write_new(stored, data, age, facts)
        except CreateError:
            continue
        return True
    raise RuntimeError("Unable to create a new session key in Redis.")


def _save_pending(stored: Stored, data: dict[str, Any], age: Age, facts: str) -> Steps:
    """Write a key that cycle_key() left pending, in the user's slot."""
    if not stored.read:
        stored.settle(user_of(data))
    elif not stored.belongs(user_of(data)):
        logger.warning(
            "The session key was read before the user id was set after cycle_key(); "
            "it changes now to a key in the user's slot."
        )
        return (yield from create(stored, data, age, facts))
    try:
        yield from _write_new(stored, data, age, facts)
    except CreateError:
        return (yield from create(stored, data, age, facts))
    return False


def _move(
    stored: Stored, keys: Keys, data: dict[str, Any], age: Age, rebase: Rebase, facts: str
) -> Steps:
    """Write a stored session that gained a user id without cycle_key().

    The old key is deleted first, version-checked, so a session ended
    meanwhile is never brought back; then the data is written under a
    key in the user's slot. Two calls: a failure between them loses the
    session rather than resurrecting anything.
    """
    logger.warning(
        "The session's user id was set without cycle_key(): its key changes at save "
        "to one in the user's slot (use django.contrib.auth.login())."
    )
    yield from _delete_loaded(stored, keys, rebase)
    return (yield from create(stored, data, age, facts))


# -- delete -----------------------------------------------------------------


def delete(stored: Stored) -> Steps:
    """Plan delete() of the store's own session: whatever is stored under its key."""
    keys = None if stored.pending else stored.keys(context().prefix)
    if keys is not None:
        yield calls.delete(keys)
        stored.record = None
    return None


def _delete_loaded(stored: Stored, keys: Keys, rebase: Rebase) -> Steps:
    """Delete only the version of the record this request loaded.

    A newer one is rebased onto (this request's changes kept in memory)
    and the delete tried again; a session that is gone raises ``UpdateError``.
    """
    for _ in range(SAVE_ATTEMPTS):
        version = stored.record.version if stored.record else None
        reply = yield calls.delete(keys, version)
        if isinstance(reply, bytes):
            rebase(keys, reply)
            continue
        stored.record = None
        if reply < 0:
            stored.forget()
            raise UpdateError
        return None
    raise SaveConflict("The session kept changing while this request moved it.")


# -- cycle ------------------------------------------------------------------


def cycle(stored: Stored, data: dict[str, Any], age: Age, rebase: Rebase) -> Steps:
    """Plan cycle_key().

    A stored signed-in session moves atomically to a new key in its slot
    (``SessionInterrupted`` if it was ended meanwhile). Otherwise the
    stored record, if any, is deleted (version-checked) and the session
    gets a pending key, written by the next save in the slot its data
    calls for: at login the user id is set after cycle_key().
    """
    keys = None if stored.pending else stored.keys(context().prefix)
    loaded = stored.record
    uid = user_of(data)
    signed_in = loaded is not None and loaded.user is not None and uid == loaded.user
    if keys is not None and signed_in and age() > 0:
        return (yield from _move_signed_in(stored, keys, data, age, rebase))
    if keys is not None and loaded is not None:
        try:
            yield from _delete_loaded(stored, keys, rebase)
        except UpdateError:
            # Deleted or expired meanwhile: its data is not carried over.
            data.clear()
    elif keys is not None:
        # Data set without a load (clear() before login(), say): the old
        # key must go all the same, as Django's cycle_key() promises.
        yield calls.delete(keys)
    stored.rekey(new_session_key(random_tag()), pending=True)
    return None


def _move_signed_in(
    stored: Stored, old: Keys, data: dict[str, Any], age: Age, rebase: Rebase
) -> Steps:
    """Move the loaded signed-in record to a new key in its slot, in one call."""
    ctx = context()
    tag = stored.tag()
    assert tag is not None
    for _ in range(CREATE_ATTEMPTS):
        loaded = stored.record
        assert loaded is not None
        new_key = new_session_key(tag)
        new = Keys.for_session(ctx.prefix, new_key)
        body = ctx.codec.dumps(data)
        version = loaded.version + 1
        record = ctx.codec.record(
            new.member, loaded.user, loaded.created, body, version, loaded.last_seen
        )
        reply = yield calls.cycle(
            old, new, loaded.version, _ms(age), loaded.user, record, ctx.absolute, ctx.activity
        )
        if isinstance(reply, bytes):
            rebase(old, reply)
            continue
        if reply == 0:
            continue  # the new key exists: draw another
        if reply < 0:
            stored.forget()
            raise SessionInterrupted(
                "The session was ended while this request was changing its key."
            )
        written = Record(version, loaded.user, loaded.created, loaded.last_seen, body, False)
        stored.rekey(new_key, record=written)
        return None
    raise RuntimeError("Unable to create a new session key in Redis.")
