"""Account events: end sessions when a password changes or a user goes away.

Each is a setting (see the docs) and on by default:

- ``END_OTHER_SESSIONS_ON_PASSWORD_CHANGE``: a saved user whose password was
  set anew loses every session but the request's own (when the request is the
  user's, and SessionMetadataMiddleware is installed to tell);
- ``END_SESSIONS_ON_DEACTIVATE``: a saved user with ``is_active`` False loses
  all sessions;
- ``END_SESSIONS_ON_DELETE``: a deleted user loses all sessions.

A sign-in also stamps its time in the session (``AUTH_TIME_KEY``), so the
users' own sessions page knows when to ask for the password again.
"""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings
from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_delete, post_save

from .conf import charon_settings
from .signals import REASON_DEACTIVATED, REASON_DELETED, REASON_PASSWORD_CHANGE

ENGINE = "django_charon_sessions.engine"
AUTH_USER_KEY = "_auth_user_id"
#: Session key holding the Unix time of the sign-in (or of the last password check).
AUTH_TIME_KEY = "_charon_auth_time"


def connect() -> None:
    """Connect the handlers to the user model's signals (from ``ready()``)."""
    model = settings.AUTH_USER_MODEL
    post_save.connect(user_saved, sender=model, dispatch_uid="charon_sessions.user_saved")
    post_delete.connect(user_deleted, sender=model, dispatch_uid="charon_sessions.user_deleted")
    user_logged_in.connect(logged_in, dispatch_uid="charon_sessions.logged_in")


def logged_in(sender: Any, request: Any = None, user: Any = None, **kwargs: Any) -> None:
    session = getattr(request, "session", None)
    if session is not None and _in_use():
        session[AUTH_TIME_KEY] = int(time.time())


def _in_use() -> bool:
    return getattr(settings, "SESSION_ENGINE", "") == ENGINE


def _session_to_keep(user: Any) -> str | None:
    from .api import user_id_of
    from .middleware import current_session

    session = current_session()
    if session is None or not getattr(session, "session_key", None):
        return None
    owner = session.get(AUTH_USER_KEY)
    return (
        str(session.session_key) if owner is not None and str(owner) == user_id_of(user) else None
    )


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
    password_changed = getattr(instance, "_password", None) is not None
    if password_changed and s.END_OTHER_SESSIONS_ON_PASSWORD_CHANGE:
        keep = _session_to_keep(instance)
        end_sessions(instance, keep_session_key=keep, reason=REASON_PASSWORD_CHANGE)


def user_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    if not _in_use() or not charon_settings.END_SESSIONS_ON_DELETE:
        return
    from .api import end_sessions

    end_sessions(instance, reason=REASON_DELETED)
