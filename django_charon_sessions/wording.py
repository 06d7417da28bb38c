"""How a session and a moment are named to people, in pages, messages and history.

One place, so that the admin's history, its messages, the users' page and
the templates say the same thing the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.utils.formats import date_format
from django.utils.timezone import localtime
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

if TYPE_CHECKING:
    from datetime import datetime

    from .api import UserSession

#: How many characters of a public id name a session to people.
SHORT_ID = 8


def exact_time(moment: datetime) -> str:
    """Return ``moment`` in the current time zone, in the locale's format, naming the zone.

    As the templates show it: converted to the current time zone when
    ``USE_TZ`` is on, left in UTC otherwise; the zone is named either way
    (Django's ``T`` format), e.g. "Dec. 2, 2026, 10:50 a.m. UTC".
    """
    local = localtime(moment) if settings.USE_TZ else moment
    return f"{date_format(local, 'DATETIME_FORMAT')} {date_format(local, 'T')}"


def describe_session(session: UserSession) -> str:
    """Return which device a session is, e.g. for a message after revoking it.

    Browser and OS, IP, when it signed in and the first characters of its
    public id (never the session key).
    """
    return _("%(browser)s on %(os)s, IP %(ip)s, signed in %(created)s, id %(id)s") % {
        "browser": session.browser,
        "os": session.os,
        "ip": session.ip or "—",
        "created": exact_time(session.created),
        "id": session.id[:SHORT_ID],
    }


def ended_everywhere(count: int) -> str:
    """Return the message (and history entry) for a "log out everywhere" that ended ``count``."""
    return ngettext(
        "Logged out everywhere: ended %(count)d session.",
        "Logged out everywhere: ended %(count)d sessions.",
        count,
    ) % {"count": count}


def revoked_message(session: UserSession | None) -> str:
    """Return the message (and history entry) for revoking ``session``: its device, if known."""
    if session is None:
        return _("Revoked 1 session.")
    return _("Revoked the session of %(device)s.") % {"device": describe_session(session)}
