"""Signals sent by this app."""

from __future__ import annotations

from typing import Any

from django.dispatch import Signal

#: Sent whenever sessions of a user are ended, by the user model, with keyword arguments
#: ``user`` (the user object, or None when only the id is known), ``user_id``
#: (the id as stored in the session, a string), ``count`` (how many live
#: sessions ended, at least 1) and ``reason`` (one of the REASON_* values, or
#: the reason given to the API).
sessions_ended = Signal()

#: One session was ended by hand (the admin's "Revoke", a user's "Sign out").
REASON_REVOKED = "revoked"
#: All of a user's sessions, or all but one, were ended ("Log out everywhere").
REASON_LOGOUT_EVERYWHERE = "logout_everywhere"
#: The user's password changed (``END_OTHER_SESSIONS_ON_PASSWORD_CHANGE``).
REASON_PASSWORD_CHANGE = "password_change"  # noqa: S105 - a reason, not a secret
#: The user was saved with ``is_active = False`` (``END_SESSIONS_ON_DEACTIVATE``).
REASON_DEACTIVATED = "deactivated"
#: The user was deleted (``END_SESSIONS_ON_DELETE``).
REASON_DELETED = "deleted"
#: A new session went over ``MAX_SESSIONS_PER_USER``; the oldest ended.
REASON_LIMIT = "limit"


def send_ended(user: Any, user_id: str, count: int, reason: str) -> None:
    """Send :data:`sessions_ended` (sender: the user model) if ``count`` > 0."""
    if count > 0:
        from django.contrib.auth import get_user_model

        sessions_ended.send(
            sender=get_user_model(), user=user, user_id=user_id, count=count, reason=reason
        )
