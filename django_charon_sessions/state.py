"""What the engine knows: per process (:func:`context`) and per store (:class:`Stored`).

:func:`context` holds what every operation derives from the settings (the key
prefix, the record codec, the functions' limits), built once and dropped
when those settings change. :class:`Stored` is one store's view of the
record under its session key: whether the key is pending, the record as
loaded or last written, the slot of an imported key, and its Redis keys.
A record read from Redis is verified by :func:`open_record`, and merged
with a request's own changes by :meth:`Stored.rebase`.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.contrib.sessions.backends.base import UpdateError
from django.core.signals import setting_changed
from django.dispatch import receiver

from .codec import BadRecordError, Codec, Record, now, user_of
from .conf import charon_settings
from .exceptions import SaveConflict
from .keyspace import (
    Keys,
    alias_key,
    is_engine_key,
    is_legacy_key,
    legacy_tag,
    member_of,
    new_session_key,
    tag_of,
    user_tag,
    user_tags,
)

if TYPE_CHECKING:
    from .exceptions import RedisUnavailable

security_logger = logging.getLogger("django.security.SuspiciousSession")


@dataclass(slots=True)
class Context:
    """The settings-derived state every operation needs."""

    prefix: str
    codec: Codec
    #: ``LAST_SEEN_INTERVAL``, ``ABSOLUTE_MAX_AGE`` and ``MAX_SESSIONS_PER_USER``
    #: as the functions take them (0: none).
    touch: int
    absolute: int
    limit: int
    #: ``SITE_ACTIVITY``: whether sign-ins and "last seen" note sessions site-wide.
    activity: bool


_context: Context | None = None


def context() -> Context:
    """Return the settings-derived state every operation needs, built once."""
    global _context
    if _context is None:
        codec = Codec.from_settings()
        _context = Context(
            prefix=codec.prefix,
            codec=codec,
            touch=charon_settings.LAST_SEEN_INTERVAL,
            absolute=charon_settings.ABSOLUTE_MAX_AGE,
            limit=charon_settings.MAX_SESSIONS_PER_USER,
            activity=charon_settings.SITE_ACTIVITY,
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


def open_record(keys: Keys, value: bytes) -> tuple[Record, dict[str, Any]] | None:
    """Verify a stored record; return it and its data, or None (and a security log line)."""
    ctx = context()
    try:
        record = ctx.codec.open(keys.member, value)
        data = ctx.codec.loads(record.body)
        if user_of(data) != record.user:
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


@dataclass(slots=True)
class Stored:
    """One store's view of the record under its session key.

    Everything here but ``unavailable`` belongs to ``key`` and is reset with
    it (:meth:`rekey`).
    """

    key: str | None = None
    #: The key was chosen by cycle_key() and is not stored yet.
    pending: bool = False
    #: Code read the pending key: it stays, even if the user id calls for
    #: another slot (until then it may still move to the user's slot).
    read: bool = False
    #: The record as loaded or last written; None when nothing is known to
    #: be stored under the key.
    record: Record | None = None
    #: The slot of an imported (legacy) key, read from its alias key.
    legacy_tag: str | None = None
    #: (prefix, Redis keys) of the key, once computed.
    memo: tuple[str, Keys] | None = None
    #: Set when a load found Redis unavailable: later calls of this store
    #: (one request) fail at once instead of paying the timeout again.
    unavailable: RedisUnavailable | None = None

    def rekey(
        self, key: str | None, *, pending: bool = False, record: Record | None = None
    ) -> None:
        """Move to ``key``: what was known of the old key no longer holds."""
        self.key = key
        self.pending = pending
        self.read = False
        self.record = record
        self.legacy_tag = None
        self.memo = None

    def forget(self) -> None:
        """Drop the key: there is no session (its next save creates one)."""
        self.rekey(None)

    def settle(self, uid: str | None) -> None:
        """Fix a pending key as it is read: in the slot of ``uid`` if it has one."""
        key = self.key
        if key is not None and uid is not None and tag_of(key) not in user_tags(uid):
            self.rekey(new_session_key(user_tag(uid)), pending=True)
        self.read = True

    def fail_fast(self) -> None:
        """Raise the error of an earlier load that found Redis unavailable.

        After a failed load Django reads the session again (the debug page
        and error reports ask for ``request.user``); each read would wait for
        the timeout anew, and could even succeed halfway through a request
        that already failed.
        """
        failed = self.unavailable
        if failed is not None:
            raise type(failed)(*failed.args) from failed

    def rebase(self, keys: Keys, data: dict[str, Any], newer_value: bytes) -> None:
        """Take a newer record another request saved, with this request's changes (``data``).

        ``data`` is rewritten in place: the newer data, then each key this
        request changed, added or removed since its load.

        Changes are found key by key on serialized values (``==`` would take
        ``1``, ``True`` and ``1.0`` for the same value) against the record
        this request loaded, so in-place edits of nested values count too.
        """
        loaded = self.record
        assert loaded is not None
        opened = open_record(keys, newer_value)
        if opened is None:
            self.forget()
            raise UpdateError
        newer, merged = opened
        if newer.user != loaded.user:
            raise SaveConflict(
                "The session was signed in or out by another request while this one "
                "changed it; this request's changes were not saved."
            )
        codec = context().codec
        base = codec.loads(loaded.body)
        for name, value in data.items():
            if name not in base or codec.dumps(value) != codec.dumps(base[name]):
                merged[name] = value
        for name in base:
            if name not in data:
                merged.pop(name, None)
        data.clear()
        data.update(merged)
        self.record = newer

    # -- imported keys ----------------------------------------------------

    def alias(self) -> str | None:
        """Return the alias key to read for an unresolved imported key, else None."""
        key = self.key
        if self.legacy_tag is None and key and is_legacy_key(key):
            return alias_key(context().prefix, key)
        return None

    def resolved(self, value: bytes | None) -> None:
        """Take the alias key's value: the user's tag, or none (an anonymous import)."""
        assert self.key is not None
        self.legacy_tag = value.decode() if value else legacy_tag(self.key)

    # -- slots ------------------------------------------------------------

    def keys(self, prefix: str) -> Keys | None:
        """Return the Redis keys of the key if it may name a stored session, else None.

        An imported key needs its tag resolved first (:meth:`alias`).
        """
        memo = self.memo
        if memo is not None and memo[0] == prefix:
            return memo[1]
        key = self.key
        if key is None:
            return None
        if is_engine_key(key):
            keys = Keys.for_session(prefix, key)
        elif self.legacy_tag is not None and is_legacy_key(key):
            keys = Keys.for_member(prefix, self.legacy_tag, member_of(key))
        else:
            return None
        self.memo = (prefix, keys)
        return keys

    def tag(self) -> str | None:
        """Return the tag of the key's slot (an imported key's once resolved)."""
        key = self.key
        if key is None:
            return None
        return self.legacy_tag if is_legacy_key(key) else tag_of(key)

    def belongs(self, uid: str | None) -> bool:
        """Return whether a session of ``uid`` may live under the key."""
        return uid is None or self.tag() in user_tags(uid)
