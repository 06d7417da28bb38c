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
:mod:`.keyspace` for the key shape and docs/design.md for the protocol. The
calls of each operation are planned in :mod:`.plans`; what a store knows of
its record is one :class:`~.state.Stored`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib.auth import HASH_SESSION_KEY
from django.contrib.sessions.backends.base import SessionBase

from . import calls, plans, receivers
from .client import get_async_client, get_client
from .codec import user_of
from .exceptions import RedisUnavailable
from .keyspace import is_valid_session_key, new_session_key, random_tag
from .maintenance import acleanup, cleanup
from .plans import SAVE_ATTEMPTS
from .state import Stored, context

if TYPE_CHECKING:
    from .keyspace import Keys

# SAVE_ATTEMPTS (from .plans): how often a save re-applies its changes to a newer record.
__all__ = ["SAVE_ATTEMPTS", "SessionStore"]


class SessionStore(SessionBase):
    """Store sessions in Redis, indexed by user; see the module docstring.

    Sync and async methods share one plan per operation (:mod:`.plans`).
    Each public method first resolves an imported key's tag and loads the
    data (``_get_session`` or ``await _aget_session``), then runs the plan
    with what it needs, on the sync or the async client.
    """

    def __init__(self, session_key: str | None = None) -> None:
        #: What this store knows of the record under its key, the key included.
        self._stored = Stored()
        super().__init__(session_key)
        #: Facts about the request (JSON: IP, user agent) stored with a
        #: signed-in session; set by SessionMetadataMiddleware.
        self.client_facts = ""

    if TYPE_CHECKING:
        _session_cache: dict[str, Any]

        # Django's private loaders, missing from django-stubs.
        def _get_session(self, no_load: bool = False) -> dict[str, Any]: ...
        async def _aget_session(self, no_load: bool = False) -> dict[str, Any]: ...

    # -- keys -------------------------------------------------------------

    # Django's SessionBase keeps the key in an attribute of its own; here it
    # lives with what is known of it, so whatever sets a key (Django's code
    # included) drops what was known of the old one.
    @property
    def _session_key(self) -> str | None:
        return self._stored.key

    @_session_key.setter
    def _session_key(self, value: str | None) -> None:
        self._stored.rekey(value if self._validate_session_key(value) else None)

    @property
    def session_key(self) -> str | None:
        """Return the key; a pending key is fixed in the user's slot when first read."""
        stored = self._stored
        if stored.pending and not stored.read:
            # No load: only cycle_key() makes a key pending, and it loaded the data.
            stored.settle(user_of(getattr(self, "_session_cache", {})))
        return stored.key

    def _validate_session_key(self, key: Any) -> bool:
        return is_valid_session_key(key)

    def _get_new_session_key(self) -> str:
        # Uniqueness is enforced by the create call itself, never by a
        # separate existence check (that would be a second round trip).
        return new_session_key(random_tag())

    async def _aget_new_session_key(self) -> str:
        return self._get_new_session_key()

    def _target(self, session_key: str | None) -> Stored:
        """Return the view of ``session_key``: this store's own, or a throwaway one."""
        stored = self._stored
        return stored if session_key == stored.key else Stored(session_key)

    def _resolve(self, target: Stored) -> None:
        """Fail fast after an outage; read an imported key's tag from its alias key."""
        self._stored.fail_fast()
        alias = target.alias()
        if alias is not None:
            target.resolved(calls.get(get_client(), alias))

    async def _aresolve(self, target: Stored) -> None:
        self._stored.fail_fast()
        alias = target.alias()
        if alias is not None:
            target.resolved(await calls.aget(get_async_client(), alias))

    # -- load -------------------------------------------------------------

    def load(self) -> dict[str, Any]:
        """Return the session's data, or ``{}`` (and drop the key) if there is none.

        If Redis is unavailable, raise :class:`~.exceptions.RedisUnavailable`,
        and raise it again at once on every later call of this store.
        """
        stored = self._stored
        try:
            self._resolve(stored)
            data: dict[str, Any] = plans.drive(plans.load(stored, self.client_facts))
        except RedisUnavailable as exc:
            stored.unavailable = stored.unavailable or exc
            raise
        return self._opened(data)

    async def aload(self) -> dict[str, Any]:
        stored = self._stored
        try:
            await self._aresolve(stored)
            data: dict[str, Any] = await plans.adrive(plans.load(stored, self.client_facts))
        except RedisUnavailable as exc:
            stored.unavailable = stored.unavailable or exc
            raise
        return self._opened(data)

    def _opened(self, data: dict[str, Any]) -> dict[str, Any]:
        """Finish a load that returned ``data``."""
        stored = self._stored
        record = stored.record
        if record is None:
            return data
        if record.stale_key:
            # Sealed with a SECRET_KEY_FALLBACKS key: have this request's
            # save re-seal it, so active sessions leave the old key soon.
            self.modified = True
        if record.user is not None and stored.key is not None:
            receivers.session_loaded(record.user, stored.key)
        return data

    # -- exists -----------------------------------------------------------

    def exists(self, session_key: str | None) -> bool:
        """Return whether ``session_key`` names a live session (a pending key does not)."""
        target = self._target(session_key)
        self._resolve(target)
        keys = target.keys(context().prefix)
        return keys is not None and calls.run(get_client(), calls.exists(keys))

    async def aexists(self, session_key: str | None) -> bool:
        target = self._target(session_key)
        await self._aresolve(target)
        keys = target.keys(context().prefix)
        return keys is not None and await calls.arun(get_async_client(), calls.exists(keys))

    # -- save -------------------------------------------------------------

    def _expiry_age(self) -> float:
        # get_expiry_age() without its clock and settings reads in the common
        # case: no expiry of the session's own means the cookie's age.
        if not self._session_cache.get("_session_expiry"):
            return self.get_session_cookie_age()
        return self.get_expiry_age()

    def _rebase(self, keys: Keys, newer_value: bytes) -> None:
        """Apply this request's changes to a newer record another request saved."""
        self._stored.rebase(keys, self._session_cache, newer_value)

    def save(self, must_create: bool = False) -> None:
        """Write the session: create it, replace it, or only move its expiry.

        Raise ``CreateError`` if ``must_create`` and the key exists,
        ``UpdateError`` if the session was deleted or ended meanwhile, and
        :class:`~.exceptions.SaveConflict` if other requests kept changing it.
        """
        self._resolve(self._stored)
        data = self._get_session(no_load=must_create)
        plan = plans.save(
            self._stored, data, must_create, self._expiry_age, self._rebase, self.client_facts
        )
        if plans.drive(plan):
            self.modified = True
        if (note := self._written()) is not None:
            receivers.session_written(*note)

    async def asave(self, must_create: bool = False) -> None:
        await self._aresolve(self._stored)
        data = await self._aget_session(no_load=must_create)
        plan = plans.save(
            self._stored, data, must_create, self._expiry_age, self._rebase, self.client_facts
        )
        if await plans.adrive(plan):
            self.modified = True
        if (note := self._written()) is not None:
            await receivers.asession_written(*note)

    def create(self) -> None:
        """Write the current data under a new key, never overwriting one."""
        data = self._get_session(no_load=True)
        plans.drive(plans.create(self._stored, data, self._expiry_age, self.client_facts))
        self.modified = True
        if (note := self._written()) is not None:
            receivers.session_written(*note)

    async def acreate(self) -> None:
        data = await self._aget_session(no_load=True)
        await plans.adrive(plans.create(self._stored, data, self._expiry_age, self.client_facts))
        self.modified = True
        if (note := self._written()) is not None:
            await receivers.asession_written(*note)

    def _written(self) -> tuple[str, str, Any] | None:
        """Return (user id, key, auth hash) of the signed-in session just stored, else None.

        A request that changed the user's password ends the user's other
        sessions once it stores one with the new hash (see :mod:`.receivers`).
        """
        stored = self._stored
        record, key = stored.record, stored.key
        if record is None or record.user is None or key is None or stored.pending:
            return None
        return record.user, key, self._session_cache.get(HASH_SESSION_KEY)

    # -- delete -----------------------------------------------------------

    def delete(self, session_key: str | None = None) -> None:
        """Delete a session (this one by default) and its index entry."""
        if session_key is None or session_key == self._stored.key:
            self._resolve(self._stored)
            plans.drive(plans.delete(self._stored))
            return
        other = Stored(session_key)
        self._resolve(other)
        keys = other.keys(context().prefix)
        if keys is not None:
            calls.run(get_client(), calls.delete(keys))

    async def adelete(self, session_key: str | None = None) -> None:
        if session_key is None or session_key == self._stored.key:
            await self._aresolve(self._stored)
            await plans.adrive(plans.delete(self._stored))
            return
        other = Stored(session_key)
        await self._aresolve(other)
        keys = other.keys(context().prefix)
        if keys is not None:
            await calls.arun(get_async_client(), calls.delete(keys))

    def flush(self) -> None:
        """Delete the session and start an empty one with no key."""
        self.clear()
        self.delete()
        self._stored.forget()

    async def aflush(self) -> None:
        self.clear()
        await self.adelete()
        self._stored.forget()

    # -- cycle ------------------------------------------------------------

    def cycle_key(self) -> None:
        """Give the session a new key, keeping its data; one call.

        A signed-in session moves atomically inside its user's slot; if it
        was ended meanwhile, raise ``SessionInterrupted`` rather than bring
        it back. An anonymous session's stored record is deleted and the new
        key is written by the next save, in the slot its data calls for.
        """
        self._resolve(self._stored)
        data = self._get_session()
        plans.drive(plans.cycle(self._stored, data, self._expiry_age, self._rebase))
        self.modified = True
        if (note := self._written()) is not None:
            receivers.session_written(*note)

    async def acycle_key(self) -> None:
        await self._aresolve(self._stored)
        data = await self._aget_session()
        await plans.adrive(plans.cycle(self._stored, data, self._expiry_age, self._rebase))
        self.modified = True
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
        cleanup()

    @classmethod
    async def aclear_expired(cls) -> None:
        await acleanup()
