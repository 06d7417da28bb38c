"""The session engine: ``SESSION_ENGINE = "django_charon_sessions.engine"``.

Each session is one sealed record in Redis (see :mod:`.codec`), and every
operation is one call of a Redis function, sync or natively async:

- load reads the record and, at most once per ``LAST_SEEN_INTERVAL``,
  updates its "last seen" time;
- save sends the whole session sealed once, or, when nothing changed, only
  the new expiry. It carries the version it loaded: if another request saved
  meanwhile, Redis answers with the newer record, this request's own changes
  are applied to it key by key, and the save is sent again. An update of a
  session that was deleted or ended fails inside the function with
  :class:`~django.contrib.sessions.backends.base.UpdateError`;
- delete, exists and cycle are one call each.

A session that signs in gets a key in its user's hash slot; see
:mod:`.keyspace` for the key shape and docs/design.md for the protocol.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY
from django.contrib.auth import SESSION_KEY as AUTH_USER_KEY
from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError
from django.contrib.sessions.exceptions import SessionInterrupted
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from . import calls, receivers
from . import calls as fn  # fn.get, fn.aget: plain GETs (sent like calls)
from .client import get_async_client, get_client
from .codec import BadRecordError, Codec, Record, now
from .conf import charon_settings
from .exceptions import RedisUnavailable, SaveConflict
from .keyspace import (
    Keys,
    alias_key,
    is_engine_key,
    is_legacy_key,
    is_valid_session_key,
    legacy_tag,
    member_of,
    new_session_key,
    random_tag,
    tag_of,
    user_tag,
    user_tags,
)
from .signals import REASON_LIMIT, send_ended

if TYPE_CHECKING:
    from collections.abc import Generator

    Steps = Generator["calls.Call[Any]", Any, Any]

__all__ = ["AUTH_USER_KEY", "SessionStore"]

#: How often create() draws a new key after a collision before giving up.
CREATE_ATTEMPTS = 20
#: How often a save re-applies its changes to a newer record before giving up.
SAVE_ATTEMPTS = 5

security_logger = logging.getLogger("django.security.SuspiciousSession")
logger = logging.getLogger("django_charon_sessions")


@dataclass
class _Context:
    prefix: str
    codec: Codec
    touch: int
    absolute: int
    limit: int


_context: _Context | None = None


def context() -> _Context:
    """Return the settings-derived state every operation needs, built once."""
    global _context
    if _context is None:
        serializer = import_string(settings.SESSION_SERIALIZER)()
        prefix = charon_settings.KEY_PREFIX
        _context = _Context(
            prefix=prefix,
            codec=Codec(serializer, prefix),
            touch=charon_settings.LAST_SEEN_INTERVAL,
            absolute=charon_settings.ABSOLUTE_MAX_AGE,
            limit=charon_settings.MAX_SESSIONS_PER_USER,
        )
    return _context


@receiver(setting_changed)
def _reset_context(*, setting: str, **kwargs: Any) -> None:
    global _context
    if setting in {"CHARON_SESSIONS", "SECRET_KEY", "SECRET_KEY_FALLBACKS", "SESSION_SERIALIZER"}:
        _context = None


def _forget_context() -> None:
    global _context
    _context = None


if hasattr(os, "register_at_fork"):
    # A forked test worker gets its own KEY_PREFIX (conf.parallel_test_worker()).
    os.register_at_fork(after_in_child=_forget_context)


def _user_of(data: dict[str, Any]) -> str | None:
    uid = data.get(AUTH_USER_KEY)
    # An empty id names no user (Django finds none): the session is anonymous.
    return None if uid is None or uid == "" else str(uid)


def _drive(steps: Steps) -> Any:
    """Run a plan of calls on the sync client; return what the plan returns."""
    client = get_client()
    try:
        call = next(steps)
        while True:
            call = steps.send(calls.run(client, call))
    except StopIteration as done:
        return done.value


async def _adrive(steps: Steps) -> Any:
    """Run a plan of calls on the event loop's async client."""
    client = get_async_client()
    try:
        call = next(steps)
        while True:
            call = steps.send(await calls.arun(client, call))
    except StopIteration as done:
        return done.value


class SessionStore(SessionBase):
    """Store sessions in Redis, indexed by user; see the module docstring.

    Sync and async methods share one plan per operation (a generator of
    function calls, ``_*_steps``); ``_drive`` and ``_adrive`` send its calls.
    Each plan expects the session data to be loaded already: the public
    methods load it first (``_get_session`` or ``await _aget_session``).
    """

    def __init__(self, session_key: str | None = None) -> None:
        super().__init__(session_key)
        #: The record as loaded or last written for the current key; None
        #: when nothing is known to be stored under it.
        self._loaded: Record | None = None
        # A key chosen by cycle_key() and not stored yet. Until code reads it,
        # it may still move to the user's slot once the user id is set.
        self._pending = False
        self._pending_read = False
        # Tags of imported (legacy) keys, read from their alias keys.
        self._legacy_tags: dict[str, str] = {}
        #: Facts about the request (JSON: IP, user agent) stored with a
        #: signed-in session; set by SessionMetadataMiddleware.
        self.client_facts = ""
        self._keys_memo: tuple[str, str, Keys] | None = None
        # Set when a load found Redis unavailable: later calls of this store
        # (one request) fail at once instead of paying the timeout again.
        self._unavailable: RedisUnavailable | None = None

    if TYPE_CHECKING:
        _session_cache: dict[str, Any]

        # Django's private loaders, missing from django-stubs.
        def _get_session(self, no_load: bool = False) -> dict[str, Any]: ...
        async def _aget_session(self, no_load: bool = False) -> dict[str, Any]: ...

    # -- keys -------------------------------------------------------------

    @property
    def session_key(self) -> str | None:
        """Return the key; a pending key is fixed in the user's slot when first read."""
        if self._pending and not self._pending_read:
            self._settle_pending()
        return self._session_key

    def _settle_pending(self) -> None:
        key = self._session_key
        uid = _user_of(getattr(self, "_session_cache", {}))
        if key is not None and uid is not None and tag_of(key) not in user_tags(uid):
            self._session_key = new_session_key(user_tag(uid))
        self._pending_read = True

    def _validate_session_key(self, key: Any) -> bool:
        return is_valid_session_key(key)

    def _get_new_session_key(self) -> str:
        # Uniqueness is enforced by the create call itself, never by a
        # separate existence check (that would be a second round trip).
        return new_session_key(random_tag())

    async def _aget_new_session_key(self) -> str:
        return self._get_new_session_key()

    def _stored_keys(self, session_key: str | None) -> Keys | None:
        """Return the Redis keys of a key that may name a stored session, else None.

        An imported key's tag must have been resolved (``_resolve``) first.
        """
        if session_key is None:
            return None
        memo = self._keys_memo
        prefix = context().prefix
        if memo is not None and memo[0] == session_key and memo[1] == prefix:
            return memo[2]
        if is_engine_key(session_key):
            keys = Keys.for_session(prefix, session_key)
        elif is_legacy_key(session_key) and session_key in self._legacy_tags:
            keys = Keys.for_member(prefix, self._legacy_tags[session_key], member_of(session_key))
        else:
            return None
        self._keys_memo = (session_key, prefix, keys)
        return keys

    def _tag(self, session_key: str) -> str | None:
        if is_legacy_key(session_key):
            return self._legacy_tags.get(session_key)
        return tag_of(session_key)

    def _belongs(self, session_key: str, uid: str | None) -> bool:
        """Return whether a session of ``uid`` may live under ``session_key``."""
        return uid is None or self._tag(session_key) in user_tags(uid)

    # -- imported keys ----------------------------------------------------

    def _alias(self, session_key: str | None) -> str | None:
        """Return the alias key to read for an unresolved imported key, else None."""
        if session_key and is_legacy_key(session_key) and session_key not in self._legacy_tags:
            return alias_key(context().prefix, session_key)
        return None

    def _resolved(self, session_key: str, value: bytes | None) -> None:
        self._legacy_tags[session_key] = value.decode() if value else legacy_tag(session_key)

    def _fail_fast(self) -> None:
        """Raise the error of an earlier load that found Redis unavailable.

        After a failed load Django reads the session again (the debug page
        and error reports ask for ``request.user``); each read would wait for
        the timeout anew, and could even succeed halfway through a request
        that already failed.
        """
        failed = self._unavailable
        if failed is not None:
            raise type(failed)(*failed.args) from failed

    def _resolve(self, session_key: str | None) -> None:
        self._fail_fast()
        alias = self._alias(session_key)
        if alias is not None:
            assert session_key is not None
            self._resolved(session_key, fn.get(get_client(), alias))

    async def _aresolve(self, session_key: str | None) -> None:
        self._fail_fast()
        alias = self._alias(session_key)
        if alias is not None:
            assert session_key is not None
            self._resolved(session_key, await fn.aget(get_async_client(), alias))

    # -- load -------------------------------------------------------------

    def _load_steps(self) -> Steps:
        if self._pending:
            return {}  # nothing stored yet
        keys = self._stored_keys(self._session_key)
        if keys is None:
            return self._forget()
        ctx = context()
        value = yield calls.load(keys, ctx.touch, ctx.absolute, self.client_facts)
        if value is None:
            return self._forget()
        opened = self._open(keys, value)
        if opened is None:
            return self._forget()
        self._loaded, data = opened
        if self._loaded.stale_key:
            # Sealed with a SECRET_KEY_FALLBACKS key: have this request's
            # save re-seal it, so active sessions leave the old key soon.
            self.modified = True
        return data

    def _open(self, keys: Keys, value: bytes) -> tuple[Record, dict[str, Any]] | None:
        """Verify a record; None (and a security log line) if it fails."""
        ctx = context()
        try:
            record = ctx.codec.open(keys.member, value)
            data = ctx.codec.loads(record.body)
            if _user_of(data) != record.user:
                raise BadRecordError
        except BadRecordError:
            security_logger.warning(
                "Session %s failed verification and was treated as no session.",
                keys.member[:8],
            )
            return None
        if ctx.absolute and record.created + ctx.absolute <= now():
            return None  # Redis deletes it too, by its own clock
        return record, data

    def _forget(self) -> dict[str, Any]:
        self._session_key = None
        self._loaded = None
        self._pending = self._pending_read = False
        return {}

    def load(self) -> dict[str, Any]:
        """Return the session's data, or ``{}`` (and drop the key) if there is none.

        If Redis is unavailable, raise :class:`~.exceptions.RedisUnavailable`,
        and raise it again at once on every later call of this store.
        """
        try:
            self._resolve(self._session_key)
            return _drive(self._load_steps())  # type: ignore[no-any-return]
        except RedisUnavailable as exc:
            self._unavailable = self._unavailable or exc
            raise

    async def aload(self) -> dict[str, Any]:
        try:
            await self._aresolve(self._session_key)
            return await _adrive(self._load_steps())  # type: ignore[no-any-return]
        except RedisUnavailable as exc:
            self._unavailable = self._unavailable or exc
            raise

    # -- exists -----------------------------------------------------------

    def exists(self, session_key: str | None) -> bool:
        """Return whether ``session_key`` names a live session (a pending key does not)."""
        self._resolve(session_key)
        keys = self._stored_keys(session_key)
        return keys is not None and calls.run(get_client(), calls.exists(keys))

    async def aexists(self, session_key: str | None) -> bool:
        await self._aresolve(session_key)
        keys = self._stored_keys(session_key)
        return keys is not None and await calls.arun(get_async_client(), calls.exists(keys))

    # -- save -------------------------------------------------------------

    def _expiry_age(self) -> float:
        # get_expiry_age() without its clock and settings reads in the common
        # case: no expiry of the session's own means the cookie's age.
        if not self._session_cache.get("_session_expiry"):
            return self.get_session_cookie_age()
        return self.get_expiry_age()

    def _ttl_ms(self) -> int:
        return int(self._expiry_age() * 1000)

    def _rebase(self, keys: Keys, newer_value: bytes) -> None:
        """Apply this request's changes to a newer record another request saved.

        Changes are found key by key on serialized values (``==`` would take
        ``1``, ``True`` and ``1.0`` for the same value) against the record
        this request loaded, so in-place edits of nested values count too.
        """
        loaded = self._loaded
        assert loaded is not None
        opened = self._open(keys, newer_value)
        if opened is None:
            self._forget()
            raise UpdateError
        newer, merged = opened
        if newer.user != loaded.user:
            raise SaveConflict(
                "The session was signed in or out by another request while this one "
                "changed it; this request's changes were not saved."
            )
        codec = context().codec
        base = codec.loads(loaded.body)
        mine: dict[str, Any] = self._session_cache
        for name, value in mine.items():
            if name not in base or codec.dumps(value) != codec.dumps(base[name]):
                merged[name] = value
        for name in base:
            if name not in mine:
                merged.pop(name, None)
        self._session_cache = merged
        self._loaded = newer

    def _save_steps(self, must_create: bool) -> Steps:
        """Plan a save; the data is loaded (or ``no_load`` for a create)."""
        key = self._session_key
        if key is None:
            return (yield from self._create_steps())
        if must_create:
            if self._pending and not self._pending_read:
                self._settle_pending()
                key = self._session_key
                assert key is not None
            uid = _user_of(self._session_cache)
            if not is_engine_key(key) or not self._belongs(key, uid):
                return (yield from self._create_steps())  # a key in the user's slot
            return (yield from self._write_new_steps(key))
        age = self._expiry_age()
        if age <= 0:
            # A negative or past expiry ends the session, as Django's own
            # engines do when given a timeout that has run out.
            return (yield from self._delete_steps(None))
        if self._pending:
            return (yield from self._save_pending_steps())
        keys = self._stored_keys(key)
        if keys is None:
            return (yield from self._create_steps())
        if self._loaded is None:
            # Data set without a load (clear() first, say), or this store
            # deleted its session: read the record's version, then replace
            # what it holds. A session that is gone stays gone, as with
            # Django's db engine (UpdateError), never re-created from memory.
            ctx = context()
            value = yield calls.load(keys, ctx.touch, ctx.absolute, self.client_facts)
            opened = None if value is None else self._open(keys, value)
            if opened is None:
                self._forget()
                raise UpdateError
            self._loaded = opened[0]
        uid = _user_of(self._session_cache)
        # A session stays where it was stored for its user; only a new user
        # id needs its tag checked.
        if uid != self._loaded.user and not self._belongs(key, uid):
            return (yield from self._move_steps(keys))
        return (yield from self._update_steps(keys, int(age * 1000)))

    def _update_steps(self, keys: Keys, ttl: int) -> Steps:
        ctx = context()
        for attempt in range(SAVE_ATTEMPTS):
            if attempt:
                ttl = self._ttl_ms()  # the newer record may have its own expiry
            loaded = self._loaded
            assert loaded is not None
            data = self._session_cache
            uid = _user_of(data)
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
                self._rebase(keys, reply)
                continue
            if reply < 0:
                self._forget()
                raise UpdateError
            if not unchanged:
                self._loaded = Record(
                    loaded.version + 1, uid, loaded.created, loaded.last_seen, body, False
                )
            return None
        raise SaveConflict(
            f"The session changed in {SAVE_ATTEMPTS} other requests while this one tried "
            "to save it; this request's changes were not saved."
        )

    def _write_new_steps(self, key: str) -> Steps:
        """Create the record of ``key``; raise ``CreateError`` if the key exists."""
        ctx = context()
        keys = Keys.for_session(ctx.prefix, key)
        data = self._session_cache
        uid = _user_of(data)
        created = now()
        body = ctx.codec.dumps(data)
        record = ctx.codec.record(keys.member, uid, created, body, 1, created)
        facts = self.client_facts if uid is not None else ""
        reply = yield calls.create(
            keys, self._ttl_ms(), uid, created, record, facts, ctx.absolute, ctx.limit
        )
        if reply == 0:
            raise CreateError
        self._pending = self._pending_read = False
        if reply < 0:  # expired on arrival, as with Django's engines: not stored
            self._loaded = None
            return None
        self._loaded = Record(1, uid, created, created, body, False)
        self._pending = self._pending_read = False
        if uid is not None and reply > 1:
            send_ended(None, uid, reply - 1, REASON_LIMIT)
        return None

    def _create_steps(self) -> Steps:
        """Write the data under a new key in the slot it belongs to."""
        uid = _user_of(self._session_cache)
        for _ in range(CREATE_ATTEMPTS):
            key = new_session_key(user_tag(uid) if uid is not None else random_tag())
            self._session_key = key
            self._pending = self._pending_read = False
            try:
                yield from self._write_new_steps(key)
            except CreateError:
                continue
            self.modified = True
            return None
        raise RuntimeError("Unable to create a new session key in Redis.")

    def _save_pending_steps(self) -> Steps:
        key = self._session_key
        assert key is not None
        if not self._pending_read:
            self._settle_pending()
            key = self._session_key
            assert key is not None
        elif not self._belongs(key, _user_of(self._session_cache)):
            logger.warning(
                "The session key was read before the user id was set after cycle_key(); "
                "it changes now to a key in the user's slot."
            )
            return (yield from self._create_steps())
        try:
            return (yield from self._write_new_steps(key))
        except CreateError:
            return (yield from self._create_steps())

    def _move_steps(self, keys: Keys) -> Steps:
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
        yield from self._delete_steps(keys, check_version=True)
        return (yield from self._create_steps())

    def save(self, must_create: bool = False) -> None:
        """Write the session: create it, replace it, or only move its expiry.

        Raise ``CreateError`` if ``must_create`` and the key exists,
        ``UpdateError`` if the session was deleted or ended meanwhile, and
        :class:`~.exceptions.SaveConflict` if other requests kept changing it.
        """
        self._resolve(self._session_key)
        self._get_session(no_load=must_create)
        _drive(self._save_steps(must_create))
        if (note := self._written()) is not None:
            receivers.session_written(*note)

    async def asave(self, must_create: bool = False) -> None:
        await self._aresolve(self._session_key)
        await self._aget_session(no_load=must_create)
        await _adrive(self._save_steps(must_create))
        if (note := self._written()) is not None:
            await receivers.asession_written(*note)

    def create(self) -> None:
        """Write the current data under a new key, never overwriting one."""
        self._get_session(no_load=True)
        _drive(self._create_steps())
        if (note := self._written()) is not None:
            receivers.session_written(*note)

    async def acreate(self) -> None:
        await self._aget_session(no_load=True)
        await _adrive(self._create_steps())
        if (note := self._written()) is not None:
            await receivers.asession_written(*note)

    def _written(self) -> tuple[str, str, Any] | None:
        """Return (user id, key, auth hash) of the signed-in session just stored, else None.

        A request that changed the user's password ends the user's other
        sessions once it stores one with the new hash (see :mod:`.receivers`).
        """
        loaded = self._loaded
        key = self._session_key
        if loaded is None or loaded.user is None or key is None or self._pending:
            return None
        return loaded.user, key, self._session_cache.get(HASH_SESSION_KEY)

    # -- delete -----------------------------------------------------------

    def _delete_steps(self, keys: Keys | None, check_version: bool = False) -> Steps:
        """Delete a session: this one (``keys`` None) or the one ``keys`` name.

        With ``check_version`` only the version this request loaded goes: a
        newer one is rebased onto (this request's changes kept in memory) and
        the delete tried again; a session that is gone raises ``UpdateError``.
        """
        own = keys is None
        if own:
            keys = None if self._pending else self._stored_keys(self._session_key)
        if keys is None:
            return None
        for _ in range(SAVE_ATTEMPTS if check_version else 1):
            version = self._loaded.version if check_version and self._loaded else None
            reply = yield calls.delete(keys, version)
            if isinstance(reply, bytes):
                self._rebase(keys, reply)
                continue
            if own or check_version:
                self._loaded = None
            if check_version and reply < 0:
                self._forget()
                raise UpdateError
            return None
        raise SaveConflict("The session kept changing while this request moved it.")

    def delete(self, session_key: str | None = None) -> None:
        """Delete a session (this one by default) and its index entry."""
        self._resolve(session_key or self._session_key)
        if session_key is not None and session_key != self._session_key:
            keys = self._stored_keys(session_key)
            if keys is not None:
                calls.run(get_client(), calls.delete(keys))
            return
        _drive(self._delete_steps(None))

    async def adelete(self, session_key: str | None = None) -> None:
        await self._aresolve(session_key or self._session_key)
        if session_key is not None and session_key != self._session_key:
            keys = self._stored_keys(session_key)
            if keys is not None:
                await calls.arun(get_async_client(), calls.delete(keys))
            return
        await _adrive(self._delete_steps(None))

    def flush(self) -> None:
        """Delete the session and start an empty one with no key."""
        self.clear()
        self.delete()
        self._forget()

    async def aflush(self) -> None:
        self.clear()
        await self.adelete()
        self._forget()

    # -- cycle ------------------------------------------------------------

    def _cycle_steps(self) -> Steps:
        """Plan cycle_key(); the data is loaded.

        A stored signed-in session moves atomically to a new key in its slot
        (``SessionInterrupted`` if it was ended meanwhile). Otherwise the
        stored record, if any, is deleted (version-checked) and the session
        gets a pending key, written by the next save in the slot its data
        calls for: at login the user id is set after cycle_key().
        """
        key = self._session_key
        keys = None if self._pending else self._stored_keys(key)
        loaded = self._loaded
        uid = _user_of(self._session_cache)
        signed_in = loaded is not None and loaded.user is not None and uid == loaded.user
        if keys is not None and signed_in and self._expiry_age() > 0:
            return (yield from self._move_signed_in_steps(keys))
        if keys is not None and loaded is not None:
            try:
                yield from self._delete_steps(keys, check_version=True)
            except UpdateError:
                # Deleted or expired meanwhile: its data is not carried over.
                self._session_cache = {}
        elif keys is not None:
            # Data set without a load (clear() before login(), say): the old
            # key must go all the same, as Django's cycle_key() promises.
            yield calls.delete(keys)
        self._session_key = new_session_key(random_tag())
        self._loaded = None
        self._pending, self._pending_read = True, False
        self.modified = True
        return None

    def _move_signed_in_steps(self, old: Keys) -> Steps:
        ctx = context()
        assert self._session_key is not None
        tag = self._tag(self._session_key)
        assert tag is not None
        for _ in range(CREATE_ATTEMPTS):
            loaded = self._loaded
            assert loaded is not None
            new_key = new_session_key(tag)
            new = Keys.for_session(ctx.prefix, new_key)
            data = self._session_cache
            body = ctx.codec.dumps(data)
            record = ctx.codec.record(
                new.member, loaded.user, loaded.created, body, loaded.version + 1, loaded.last_seen
            )
            reply = yield calls.cycle(
                old, new, loaded.version, self._ttl_ms(), loaded.user, record, ctx.absolute
            )
            if isinstance(reply, bytes):
                self._rebase(old, reply)
                continue
            if reply == 0:
                continue  # the new key exists: draw another
            if reply < 0:
                self._forget()
                raise SessionInterrupted(
                    "The session was ended while this request was changing its key."
                )
            self._session_key = new_key
            self._loaded = Record(
                loaded.version + 1, loaded.user, loaded.created, loaded.last_seen, body, False
            )
            self.modified = True
            return None
        raise RuntimeError("Unable to create a new session key in Redis.")

    def cycle_key(self) -> None:
        """Give the session a new key, keeping its data; one call.

        A signed-in session moves atomically inside its user's slot; if it
        was ended meanwhile, raise ``SessionInterrupted`` rather than bring
        it back. An anonymous session's stored record is deleted and the new
        key is written by the next save, in the slot its data calls for.
        """
        self._resolve(self._session_key)
        self._get_session()
        _drive(self._cycle_steps())
        if (note := self._written()) is not None:
            receivers.session_written(*note)

    async def acycle_key(self) -> None:
        await self._aresolve(self._session_key)
        await self._aget_session()
        await _adrive(self._cycle_steps())
        if (note := self._written()) is not None:
            await receivers.asession_written(*note)

    # -- maintenance ------------------------------------------------------

    @classmethod
    def clear_expired(cls) -> None:
        """Remove stale index entries and ended sessions' records, for all users.

        Redis expires sessions by itself and writes prune their user's index,
        so this is housekeeping; ``manage.py sessions_cleanup`` runs the same
        work with a report.
        """
        from .maintenance import cleanup

        cleanup()

    @classmethod
    async def aclear_expired(cls) -> None:
        from .maintenance import acleanup

        await acleanup()
