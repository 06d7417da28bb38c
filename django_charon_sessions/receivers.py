"""Account events: end sessions when a password changes or a user goes away.

Each is a setting (see the docs) and on by default:

- ``END_OTHER_SESSIONS_ON_PASSWORD_CHANGE``: a saved user whose password was
  set anew loses every session that Django's own session-hash check would
  refuse on its next request: all of them but one this request saves with the
  new hash (``update_session_auth_hash()``, as Django's password views call);
- ``END_SESSIONS_ON_DEACTIVATE``: a saved user with ``is_active`` False loses
  all sessions;
- ``END_SESSIONS_ON_DELETE``: a deleted user loses all sessions.

A password change inside a request waits for the request's session: Django's
views save the user *before* they give the session the new hash, so ending
the sessions at ``post_save`` would end the request's own too. The sessions
end as soon as the request writes a session of that user carrying the new
hash (keeping that one), or at the end of the request (keeping none).
Outside a request (a shell, a task) they end at once. A request is known by
Django's ``request_started`` and ``request_finished`` signals, so this works
with or without ``SessionMetadataMiddleware``, under WSGI and ASGI.

A sign-in also stamps its time in the session (``AUTH_TIME_KEY``), so the
users' own sessions page knows when to ask for the password again.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.core.signals import request_finished, request_started
from django.db.models.signals import post_delete, post_save
from django.utils.crypto import constant_time_compare

from .conf import ENGINE, charon_settings
from .signals import REASON_DEACTIVATED, REASON_DELETED, REASON_PASSWORD_CHANGE

#: Session key holding the Unix time of the sign-in (or of the last password check).
AUTH_TIME_KEY = "_charon_auth_time"


@dataclass(eq=False, slots=True)
class _Scope:
    """One request: password changes waiting for it, and the sessions it wrote."""

    open: bool = True
    #: User id -> the user whose password changed, sessions not ended yet.
    changed: dict[str, Any] = field(default_factory=dict)
    #: User id -> (session key, auth hash) of the last session of it written.
    written: dict[str, tuple[str, Any]] = field(default_factory=dict)


# A mutable object, so what a request's threads and tasks (each with a copy of
# the context) record is seen where request_finished runs.
_scope: ContextVar[_Scope | None] = ContextVar("charon_request_scope", default=None)

# (user id, key) of the signed-in session this thread or task last loaded or
# stored. Under ASGI before Django 6.1, request_started's receivers run in a
# task of their own, so no request scope is visible to the view; a password
# change there keeps this session (the request's own) and ends the others at
# once. Keeping it is safe: if the request does not give it the new hash,
# Django's own check refuses it on its next use.
_seen: ContextVar[tuple[str, str] | None] = ContextVar("charon_seen_session", default=None)


def connect() -> None:
    """Connect the handlers to the user model's and the requests' signals (from ``ready()``)."""
    model = settings.AUTH_USER_MODEL
    post_save.connect(user_saved, sender=model, dispatch_uid="charon_sessions.user_saved")
    post_delete.connect(user_deleted, sender=model, dispatch_uid="charon_sessions.user_deleted")
    user_logged_in.connect(logged_in, dispatch_uid="charon_sessions.logged_in")
    request_started.connect(_request_started, dispatch_uid="charon_sessions.request_started")
    request_finished.connect(_request_finished, dispatch_uid="charon_sessions.request_finished")


def logged_in(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    session = getattr(request, "session", None)
    if session is not None and _in_use():
        session[AUTH_TIME_KEY] = int(time.time())


def _in_use() -> bool:
    return getattr(settings, "SESSION_ENGINE", "") == ENGINE


def _open_scope() -> _Scope | None:
    scope = _scope.get()
    return scope if scope is not None and scope.open else None


def _request_started(**kwargs: Any) -> None:
    # A thread's context outlives its request: a scope whose request_finished
    # never came (a response nobody closed) is settled now.
    _close(_scope.get())
    _scope.set(_Scope())
    _seen.set(None)


def _request_finished(**kwargs: Any) -> None:
    scope = _scope.get()
    _scope.set(None)
    _seen.set(None)
    _close(scope)


def _close(scope: _Scope | None) -> None:
    if scope is None or not scope.open:
        return
    scope.open = False
    changed, scope.changed = scope.changed, {}
    for uid, user in changed.items():
        _end_stale(user, _kept(user, scope.written.get(uid)))


def _verifies(user: Any, auth_hash: Any) -> bool:
    """Return whether Django's ``get_user()`` would accept ``auth_hash`` for ``user``."""
    if not auth_hash or not isinstance(auth_hash, str):
        return False
    current = [user.get_session_auth_hash(), *user.get_session_auth_fallback_hash()]
    return any(constant_time_compare(auth_hash, h) for h in current)


def _kept(user: Any, written: tuple[str, Any] | None) -> str | None:
    return written[0] if written is not None and _verifies(user, written[1]) else None


def _end_stale(user: Any, keep: str | None) -> None:
    from .api import end_sessions

    end_sessions(user, keep_session_key=keep, reason=REASON_PASSWORD_CHANGE)


def session_loaded(uid: str, session_key: str) -> None:
    """Note that the engine loaded a signed-in session of ``uid`` (called by the engine)."""
    _seen.set((uid, session_key))


def _settled_by(uid: str, session_key: str, auth_hash: Any) -> Any:
    """Record a session write; return the user whose sessions it lets end now."""
    _seen.set((uid, session_key))
    scope = _open_scope()
    if scope is None:
        return None
    scope.written[uid] = (session_key, auth_hash)
    user = scope.changed.get(uid)
    if user is None or not _verifies(user, auth_hash):
        return None
    del scope.changed[uid]
    return user


def session_written(uid: str, session_key: str, auth_hash: Any) -> None:
    """Note that the engine stored a session of ``uid`` (called by the engine).

    When the request changed that user's password and this session carries
    the new hash, end the user's other sessions now.
    """
    user = _settled_by(uid, session_key, auth_hash)
    if user is not None:
        _end_stale(user, session_key)


async def asession_written(uid: str, session_key: str, auth_hash: Any) -> None:
    """Async twin of :func:`session_written`."""
    user = _settled_by(uid, session_key, auth_hash)
    if user is not None:
        from .api import aend_sessions

        await aend_sessions(user, keep_session_key=session_key, reason=REASON_PASSWORD_CHANGE)


def password_changed(user: Any) -> None:
    """End the sessions of ``user`` that its new password leaves stale.

    Inside a request this waits for the request's session (see the module
    docstring); outside one it ends them all at once.
    """
    from .api import user_id_of

    uid = user_id_of(user)
    scope = _open_scope()
    if scope is None:
        seen = _seen.get()
        _end_stale(user, seen[1] if seen is not None and seen[0] == uid else None)
        return
    written = scope.written.get(uid)
    keep = _kept(user, written)
    if keep is not None:
        # This request already stored a session with the new hash
        # (update_session_auth_hash() before user.save()).
        _end_stale(user, keep)
        return
    scope.changed[uid] = user


def user_saved(sender: Any, instance: Any, created: bool = False, **kwargs: Any) -> None:
    if created or not _in_use() or kwargs.get("raw"):
        return
    from .api import end_sessions

    s = charon_settings
    if not getattr(instance, "is_active", True):
        if s.END_SESSIONS_ON_DEACTIVATE:
            end_sessions(instance, reason=REASON_DEACTIVATED)
        return
    # AbstractBaseUser keeps a newly set raw password here until save() ends.
    password_changed_ = getattr(instance, "_password", None) is not None
    if password_changed_ and s.END_OTHER_SESSIONS_ON_PASSWORD_CHANGE:
        password_changed(instance)


def user_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    if not _in_use() or not charon_settings.END_SESSIONS_ON_DELETE:
        return
    from .api import end_sessions

    end_sessions(instance, reason=REASON_DELETED)
