"""The session engine: ``SESSION_ENGINE = "django_charon_sessions.engine"``.

Every operation is one call of a Redis function, sync or natively async:

- load reads the session and, at most once per ``LAST_SEEN_INTERVAL``,
  updates its "last seen" time;
- save sends only the keys that changed (or nothing but the new expiry), and
  an update of a session that was deleted or ended meanwhile fails inside
  the function with :class:`~django.contrib.sessions.backends.base.UpdateError`;
- delete, exists and cycle are one call each.

A session that logs in moves to its user's hash slot and is indexed there in
the same call that writes it; see :mod:`django_charon_sessions.keyspace`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError
from django.contrib.sessions.exceptions import SessionInterrupted
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from . import functions as fn
from .client import get_async_client, get_client
from .codec import FIELD_USER, BadSignatureError, Codec
from .conf import charon_settings
from .keyspace import (
    Keys,
    alias_key,
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
    from collections.abc import Sequence

#: Django's session key for the authenticated user's id (django.contrib.auth).
AUTH_USER_KEY = "_auth_user_id"
#: How often create() draws a new key after a collision before giving up.
CREATE_ATTEMPTS = 20

security_logger = logging.getLogger("django.security.SuspiciousSession")


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


@dataclass
class _Write:
    """One planned write: the function's ARGV tail and the resulting state."""

    fields: list[bytes] = field(default_factory=list)
    deleted: list[bytes] = field(default_factory=list)
    payloads: dict[str, bytes] = field(default_factory=dict)

    def argv(self) -> list[bytes | int]:
        return [len(self.fields) // 2, *self.fields, len(self.deleted), *self.deleted]


def _user_of(data: dict[str, Any]) -> str | None:
    uid = data.get(AUTH_USER_KEY)
    return None if uid is None else str(uid)


def _stored_user(reply: Sequence[bytes]) -> str | None:
    for i in range(0, len(reply), 2):
        if reply[i] == FIELD_USER:
            return reply[i + 1].decode("utf-8")
    return None


class SessionStore(SessionBase):
    """Store sessions in Redis, indexed by user; see the module docstring."""

    def __init__(self, session_key: str | None = None) -> None:
        super().__init__(session_key)
        # What Redis holds for our key, per session key: None when unknown
        # (never loaded), which makes the next save replace all data.
        self._payloads: dict[str, bytes] | None = None
        # The user id Redis holds for our key (None: anonymous or not stored).
        self._stored_uid: str | None = None
        # A key chosen by cycle_key() that is not written yet; save() may
        # still swap it for one in the user's slot.
        self._provisional = False
        # Tags of imported (legacy) keys, read from their alias keys.
        self._legacy_tags: dict[str, str] = {}
        #: Facts about the request (JSON: IP, user agent) stored with an
        #: authenticated session; set by SessionMetadataMiddleware.
        self.client_facts = ""
        # The last Keys computed, with the session key and prefix they are for:
        # a load and the save after it need the same ones.
        self._keys_memo: tuple[str, str, Keys] | None = None

    if TYPE_CHECKING:
        # Django's private loaders, missing from django-stubs.
        def _get_session(self, no_load: bool = False) -> dict[str, Any]: ...
        async def _aget_session(self, no_load: bool = False) -> dict[str, Any]: ...

    # -- keys -------------------------------------------------------------

    def _validate_session_key(self, key: Any) -> bool:
        return is_valid_session_key(key) or is_legacy_key(key)

    def _get_new_session_key(self) -> str:
        # Uniqueness is enforced by the create call itself, never by a
        # separate existence check (that would be a second round trip).
        return new_session_key(random_tag())

    async def _aget_new_session_key(self) -> str:
        return self._get_new_session_key()

    def _tag_for(self, data: dict[str, Any], current: str | None) -> str:
        """Return the tag a session with ``data`` must live under."""
        uid = _user_of(data)
        if uid is None:
            return current or random_tag()
        if current is not None and current in user_tags(uid):
            return current
        return user_tag(uid)

    def _tag(self, session_key: str) -> str:
        if is_legacy_key(session_key):
            return self._legacy_tags[session_key]  # resolved before any call
        return tag_of(session_key)

    def _keys(self, session_key: str | None = None) -> Keys:
        key = session_key or self.session_key
        assert key is not None
        prefix = context().prefix
        memo = self._keys_memo
        if memo is not None and memo[0] == key and memo[1] == prefix:
            return memo[2]
        keys = Keys.for_member(prefix, self._tag(key), member_of(key))
        self._keys_memo = (key, prefix, keys)
        return keys

    # -- imported keys ----------------------------------------------------

    def _alias(self, session_key: str | None) -> str | None:
        """Return the alias key to read for an unresolved imported key, else None."""
        known = session_key in self._legacy_tags
        if session_key and is_legacy_key(session_key) and not known:
            return alias_key(context().prefix, session_key)
        return None

    def _resolved(self, session_key: str, value: bytes | None) -> None:
        self._legacy_tags[session_key] = value.decode() if value else legacy_tag(session_key)

    def _resolve(self, session_key: str | None) -> None:
        alias = self._alias(session_key)
        if alias is not None:
            assert session_key is not None
            self._resolved(session_key, fn.get(get_client(), alias))

    async def _aresolve(self, session_key: str | None) -> None:
        alias = self._alias(session_key)
        if alias is not None:
            assert session_key is not None
            self._resolved(session_key, await fn.aget(get_async_client(), alias))

    # -- load -------------------------------------------------------------

    def _load_args(self) -> tuple[Keys, list[str], list[str | int]]:
        ctx = context()
        keys = self._keys()
        k = [keys.session, keys.index, keys.meta]
        return keys, k, [keys.member, ctx.touch, ctx.absolute, self.client_facts]

    def _loaded(self, keys: Keys, reply: Sequence[bytes] | None) -> dict[str, Any]:
        self._provisional = False
        if not reply:
            return self._forget()
        try:
            data, payloads = context().codec.decode_fields(keys.member.encode(), reply)
        except BadSignatureError:
            security_logger.warning(
                "Session %s failed signature verification and was treated as empty.",
                keys.member[:8],
            )
            return self._forget()
        self._payloads = payloads
        self._stored_uid = _stored_user(reply)
        return data

    def _forget(self) -> dict[str, Any]:
        self._session_key = None
        self._payloads = {}
        self._stored_uid = None
        return {}

    def load(self) -> dict[str, Any]:
        """Return the session's data, or ``{}`` (and drop the key) if it is gone."""
        self._resolve(self.session_key)
        keys, k, a = self._load_args()
        return self._loaded(keys, fn.fcall(get_client(), fn.LOAD, k, a))

    async def aload(self) -> dict[str, Any]:
        await self._aresolve(self.session_key)
        keys, k, a = self._load_args()
        return self._loaded(keys, await fn.afcall(get_async_client(), fn.LOAD, k, a))

    # -- exists -----------------------------------------------------------

    def _exists_args(self, session_key: str) -> tuple[list[str], list[str]]:
        keys = self._keys(session_key)
        return [keys.session, keys.index], [keys.member]

    def exists(self, session_key: str | None) -> bool:
        """Return whether ``session_key`` names a live session."""
        if not self._validate_session_key(session_key):
            return False
        self._resolve(session_key)
        k, a = self._exists_args(session_key)  # type: ignore[arg-type]
        return bool(fn.fcall(get_client(), fn.EXISTS, k, a))

    async def aexists(self, session_key: str | None) -> bool:
        if not self._validate_session_key(session_key):
            return False
        await self._aresolve(session_key)
        k, a = self._exists_args(session_key)  # type: ignore[arg-type]
        return bool(await fn.afcall(get_async_client(), fn.EXISTS, k, a))

    # -- save -------------------------------------------------------------

    def _encode(self, member: str, data: dict[str, Any], full: bool) -> _Write:
        """Plan the fields to write: all of them, or only what changed."""
        codec = context().codec
        member_b = member.encode()
        before = None if full else self._payloads
        write = _Write()
        for name, value in data.items():
            payload = codec.dumps(value)
            write.payloads[name] = payload
            if before is None or before.get(name) != payload:
                field_b = name.encode("utf-8")
                write.fields += [field_b, codec.seal(member_b, field_b, payload)]
        if before is not None:
            write.deleted = [n.encode("utf-8") for n in before if n not in data]
        return write

    def _ttl_ms(self) -> int:
        return int(self.get_expiry_age() * 1000)

    def _save_call(
        self, keys: Keys, mode: str, data: dict[str, Any], write: _Write, age: float
    ) -> tuple[list[str], list[Any]]:
        ctx = context()
        uid = _user_of(data) or ""
        # Request facts go with a new session; later loads keep them fresh.
        facts = self.client_facts if mode == "c" else ""
        head = [mode, keys.member, int(age * 1000), uid, facts, ctx.absolute, ctx.limit]
        return [keys.session, keys.index, keys.meta, keys.ended], head + write.argv()

    def _saved(self, mode: str, data: dict[str, Any], write: _Write, reply: int) -> None:
        if reply == 0:
            raise CreateError
        if reply < 0:
            self._payloads = {}
            self._stored_uid = None
            raise UpdateError
        self._payloads = write.payloads
        self._stored_uid = _user_of(data)
        self._provisional = False
        if self._stored_uid is not None:
            send_ended(None, self._stored_uid, reply - 1, REASON_LIMIT)

    def _plan_save(self, must_create: bool) -> tuple[str, dict[str, Any], Keys, _Write] | None:
        """Decide how to save; None when the save must become a create."""
        data = self._get_session(no_load=must_create)
        if must_create:
            keys = self._keys()
            return "c", data, keys, self._encode(keys.member, data, full=True)
        current = self.session_key
        assert current is not None
        if self._provisional or is_legacy_key(current):
            return None
        if self._tag_for(data, tag_of(current)) != tag_of(current):
            return None
        keys = self._keys()
        mode = "u" if self._payloads is not None else "r"
        return mode, data, keys, self._encode(keys.member, data, full=mode == "r")

    def save(self, must_create: bool = False) -> None:
        """Write the session: create it, or send only what changed.

        Raise ``CreateError`` if ``must_create`` and the key exists, and
        ``UpdateError`` if the session was deleted or ended meanwhile.
        """
        if self.session_key is None:
            return self.create()
        self._get_session(no_load=must_create)
        if self.session_key is None:  # the load found nothing: start afresh
            return self.create()
        age = self.get_expiry_age()  # computed once: it reads the clock
        if age <= 0:
            return self._expire_now(must_create)
        plan = self._plan_save(must_create)
        if plan is None:
            return self._move()
        mode, data, keys, write = plan
        k, a = self._save_call(keys, mode, data, write, age)
        self._saved(mode, data, write, fn.fcall(get_client(), fn.SAVE, k, a))
        return None

    async def asave(self, must_create: bool = False) -> None:
        if self.session_key is None:
            return await self.acreate()
        await self._aget_session(no_load=must_create)
        if self.session_key is None:  # the load found nothing: start afresh
            return await self.acreate()
        age = self.get_expiry_age()  # computed once: it reads the clock
        if age <= 0:
            return await self._aexpire_now(must_create)
        plan = self._plan_save(must_create)
        if plan is None:
            return await self._amove()
        mode, data, keys, write = plan
        k, a = self._save_call(keys, mode, data, write, age)
        self._saved(mode, data, write, await fn.afcall(get_async_client(), fn.SAVE, k, a))
        return None

    def _expire_now(self, must_create: bool) -> None:
        # A negative or past expiry ends the session, as Django's own
        # engines do when given a timeout that has run out.
        if not must_create:
            self.delete()
        self._payloads = {}

    async def _aexpire_now(self, must_create: bool) -> None:
        if not must_create:
            await self.adelete()
        self._payloads = {}

    # -- create and move --------------------------------------------------

    def _next_key(self) -> str:
        data = self._get_session(no_load=True)
        current = self.session_key if self._provisional else None
        tag = self._tag_for(data, tag_of(current) if current else None)
        if current is not None and tag == tag_of(current):
            return current
        return new_session_key(tag)

    def create(self) -> None:
        """Write the current data under a new key, never overwriting one."""
        for _ in range(CREATE_ATTEMPTS):
            self._session_key = self._next_key()
            self._provisional = False
            try:
                self.save(must_create=True)
            except CreateError:
                continue
            self.modified = True
            return
        raise RuntimeError("Unable to create a new session key in Redis.")

    async def acreate(self) -> None:
        await self._aget_session(no_load=True)
        for _ in range(CREATE_ATTEMPTS):
            self._session_key = self._next_key()
            self._provisional = False
            try:
                await self.asave(must_create=True)
            except CreateError:
                continue
            self.modified = True
            return
        raise RuntimeError("Unable to create a new session key in Redis.")

    def _move(self) -> None:
        """Write a session whose key is provisional, imported or in the wrong slot.

        A stored signed-in session whose new key belongs in the same slot (an
        imported one) moves atomically, like cycle_key(), so ending it
        meanwhile is not undone. Otherwise (a user id appeared in a stored
        anonymous session without cycle_key()) it is written under a key in
        the user's slot and then its old key is deleted: two calls, the new
        one first, so a failure never loses the data.
        """
        if not self._provisional and self._cycle_once(stored=True):
            return
        old = None if self._provisional else self.session_key
        if old is not None:
            if not self._delete_stored(old):
                self._forget()
                raise UpdateError  # deleted meanwhile: do not bring it back
            self._session_key = None
        self.create()

    async def _amove(self) -> None:
        if not self._provisional and await self._acycle_once(stored=True):
            return
        old = None if self._provisional else self.session_key
        if old is not None:
            if not await self._adelete_stored(old):
                self._forget()
                raise UpdateError  # deleted meanwhile: do not bring it back
            self._session_key = None
        await self.acreate()

    def _delete_stored(self, session_key: str) -> bool:
        """Delete a stored session; return whether it was still alive."""
        call = self._delete_args(session_key)
        return call is not None and bool(fn.fcall(get_client(), fn.DELETE, *call))

    async def _adelete_stored(self, session_key: str) -> bool:
        call = self._delete_args(session_key)
        return call is not None and bool(await fn.afcall(get_async_client(), fn.DELETE, *call))

    # -- delete -----------------------------------------------------------

    def _delete_args(self, session_key: str | None) -> tuple[list[str], list[str]] | None:
        if session_key is None:
            if self.session_key is None or self._provisional:
                return None
            session_key = self.session_key
        if not self._validate_session_key(session_key):
            return None
        keys = self._keys(session_key)
        return [keys.session, keys.index, keys.meta], [keys.member]

    def delete(self, session_key: str | None = None) -> None:
        """Delete a session (this one by default) and its index entry."""
        self._resolve(session_key or self.session_key)
        call = self._delete_args(session_key)
        if call is not None:
            fn.fcall(get_client(), fn.DELETE, *call)

    async def adelete(self, session_key: str | None = None) -> None:
        await self._aresolve(session_key or self.session_key)
        call = self._delete_args(session_key)
        if call is not None:
            await fn.afcall(get_async_client(), fn.DELETE, *call)

    # -- cycle ------------------------------------------------------------

    def _cycle_plan(self, stored: bool = False) -> tuple[str, list[str], list[Any], _Write] | None:
        """Return the new key and the call moving the session there, or None
        when the session is anonymous (only the old key is deleted, and the
        new one is chosen at save time, possibly in the user's slot)."""
        old = self.session_key
        data = self._get_session()
        if old is None or self._provisional or (_user_of(data) is None and not stored):
            return None
        if self.get_expiry_age() <= 0:
            return None  # nothing to move: the save that follows deletes it
        tag = self._tag_for(data, self._tag(old))
        if tag != self._tag(old):
            return None
        new = new_session_key(tag)
        old_keys, new_keys = self._keys(old), self._keys(new)
        write = self._encode(new_keys.member, data, full=True)
        require_old = "1" if stored or self._stored_uid is not None else "0"
        uid = _user_of(data) or ""
        keys = [old_keys.session, new_keys.session, old_keys.index, old_keys.meta, old_keys.ended]
        argv: list[Any] = [old_keys.member, new_keys.member, require_old, self._ttl_ms()]
        argv += [uid, "", context().absolute, *write.argv()]
        return new, keys, argv, write

    def _cycled(self, new: str, write: _Write, reply: int) -> bool:
        if reply == 0:
            return False
        if reply < 0:
            self._forget()
            raise SessionInterrupted(
                "The session was ended while this request was changing its key."
            )
        data = self._get_session()
        self._session_key = new
        self._payloads = write.payloads
        self._stored_uid = _user_of(data)
        self._provisional = False
        self.modified = True
        return True

    def _provisional_cycle(self) -> str | None:
        old = None if self._provisional else self.session_key
        current = self.session_key
        tag = tag_of(current) if current and not is_legacy_key(current) else random_tag()
        self._session_key = new_session_key(tag)
        self._provisional = True
        self._payloads = {}
        self._stored_uid = None
        self.modified = True
        return old

    def _cycle_once(self, stored: bool = False) -> bool:
        """Move the session to a new key in its slot, if that is where it belongs.

        ``stored``: also for an anonymous session, which must still exist.
        """
        for _ in range(CREATE_ATTEMPTS):
            plan = self._cycle_plan(stored)
            if plan is None:
                return False
            new, k, a, write = plan
            if self._cycled(new, write, fn.fcall(get_client(), fn.CYCLE, k, a)):
                return True
        raise RuntimeError("Unable to create a new session key in Redis.")

    async def _acycle_once(self, stored: bool = False) -> bool:
        for _ in range(CREATE_ATTEMPTS):
            plan = self._cycle_plan(stored)
            if plan is None:
                return False
            new, k, a, write = plan
            if self._cycled(new, write, await fn.afcall(get_async_client(), fn.CYCLE, k, a)):
                return True
        raise RuntimeError("Unable to create a new session key in Redis.")

    def cycle_key(self) -> None:
        """Give the session a new key, keeping its data; one call.

        An authenticated session is moved atomically inside its user's slot;
        if it was ended meanwhile, raise ``SessionInterrupted`` rather than
        bring it back. An anonymous session's old key is deleted and the new
        one is written by the next save, in the slot its data calls for.
        """
        if not self._cycle_once():
            old = self._provisional_cycle()
            if old is not None:
                self.delete(old)

    async def acycle_key(self) -> None:
        await self._aget_session()
        if not await self._acycle_once():
            old = self._provisional_cycle()
            if old is not None:
                await self.adelete(old)

    # -- maintenance ------------------------------------------------------

    @classmethod
    def clear_expired(cls) -> None:
        """Remove stale index entries and ended sessions' data, for all users.

        Redis expires sessions by itself and every write prunes its index, so
        this is housekeeping; ``manage.py sessions_cleanup`` runs the same
        work with a report.
        """
        from .maintenance import cleanup

        cleanup()

    @classmethod
    async def aclear_expired(cls) -> None:
        from .maintenance import acleanup

        await acleanup()
