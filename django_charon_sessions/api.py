"""List and end a user's sessions, sync and async.

Sessions are named by a public id: a hash of the session key, safe to show
and to put in a URL; raw session keys never leave this module. Listing a
user's sessions and ending all of them are one Redis function call each
(one per ``SECRET_KEY`` in use, see :func:`~.keyspace.user_tags`).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from . import calls
from .agents import describe_user_agent, shown
from .client import get_async_client, get_client
from .errors import translated
from .keyspace import UserKeys, index_pattern, is_valid_member, key_prefix, member_of, user_tags
from .signals import REASON_LOGOUT_EVERYWHERE, REASON_REVOKED, send_ended

if TYPE_CHECKING:
    from collections.abc import Sequence

logger = logging.getLogger("django_charon_sessions")


@dataclass(frozen=True)
class UserSession:
    """One live session of a user, as shown to people."""

    #: Public id: a hash of the session key, safe in URLs and logs.
    id: str
    #: When the session signed in (UTC).
    created: datetime
    #: When a request last used it (UTC), updated at most once per ``LAST_SEEN_INTERVAL``.
    last_seen: datetime
    #: When it expires (UTC), unless a later save moves the expiry.
    expires: datetime
    #: Client IP when the session was last seen ("" if not captured).
    ip: str
    #: The user agent, cut to ``USER_AGENT_MAX_LENGTH`` ("" if not captured).
    user_agent: str
    #: Whether this is the session of the request that asked.
    is_current: bool
    #: City and country of the IP, e.g. "Berlin, DE" ("" without the location option).
    location: str = ""

    @property
    def browser(self) -> str:
        """Return the browser family and major version, e.g. "Firefox 130"."""
        return shown(describe_user_agent(self.user_agent)[0])

    @property
    def os(self) -> str:
        """Return the operating system, e.g. "Windows 11"."""
        return shown(describe_user_agent(self.user_agent)[1])


@dataclass(frozen=True)
class SessionStats:
    """Counts over all users' live (authenticated) sessions."""

    #: Live signed-in sessions.
    sessions: int
    #: Users with at least one of them.
    users: int
    #: Sessions last seen within the window asked for (None if none asked).
    active: int | None


def user_id_of(user: Any) -> str:
    """Return the id of ``user`` (a user object or a primary key) as sessions store it."""
    meta = getattr(user, "_meta", None)
    if meta is not None:
        return str(meta.pk.value_to_string(user))
    return str(user)


def public_id(session_key: str) -> str:
    """Return the public id of a session key."""
    return member_of(session_key)


def _user_keys(user: Any) -> list[UserKeys]:
    return [UserKeys.for_tag(key_prefix(), tag) for tag in user_tags(user_id_of(user))]


_EPOCH = datetime.fromtimestamp(0, tz=timezone.utc)


def _stamp(seconds: str) -> datetime | None:
    """Return a stored unix time, ``_EPOCH`` if none was stored, None if unreadable."""
    if not seconds:
        return _EPOCH
    try:
        return datetime.fromtimestamp(int(seconds), tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None


def _facts(rest: str) -> dict[str, Any] | None:
    """Return the stored request facts, ``{}`` if none were stored, None if unreadable."""
    if not rest:
        return {}
    try:
        facts = json.loads(rest)
    except ValueError:
        return None
    return facts if isinstance(facts, dict) else None


def _entry(member: str, expiry: bytes, meta: str, current: str | None) -> UserSession:
    """Build one listed session; what cannot be read is shown as unknown.

    The metadata is written by this app only, but a malformed entry (written
    by hand, by another version, or cut short) must not take the whole
    listing, and with it the admin's and users' pages, down.
    """
    last_seen, created, facts = _stamp(meta[:10]), _stamp(meta[11:21]), _facts(meta[22:])
    if last_seen is None or created is None or facts is None:
        # Never the contents: they hold a client's IP and user agent.
        logger.warning(
            "Session %s has malformed metadata in Redis; it is listed with what could be read.",
            member[:8],
        )
    facts = facts or {}
    return UserSession(
        id=member,
        created=created or _EPOCH,
        last_seen=last_seen or _EPOCH,
        expires=datetime.fromtimestamp(float(expiry) / 1000, tz=timezone.utc),
        ip=str(facts.get("ip", "")),
        user_agent=str(facts.get("ua", "")),
        is_current=member == current,
        location=str(facts.get("loc", "")),
    )


def _parse_list(reply: Sequence[bytes], current: str | None) -> list[UserSession]:
    out = [
        _entry(
            reply[i].decode("utf-8", "replace"),
            reply[i + 1],
            reply[i + 2].decode("utf-8", "replace"),
            current,
        )
        for i in range(0, len(reply), 3)
    ]
    out.sort(key=lambda s: s.last_seen, reverse=True)
    return out


def _current_member(current_session_key: str | None) -> str | None:
    return member_of(current_session_key) if current_session_key else None


def list_sessions(user: Any, current_session_key: str | None = None) -> list[UserSession]:
    """Return the live sessions of ``user``, most recently seen first.

    Pass the request's ``session.session_key`` as ``current_session_key`` to
    have that session marked ``is_current``.
    """
    client = get_client()
    current = _current_member(current_session_key)
    out: list[UserSession] = []
    for keys in _user_keys(user):
        out += _parse_list(calls.run(client, calls.list_user(keys)), current)
    return sorted(out, key=lambda s: s.last_seen, reverse=True)


async def alist_sessions(user: Any, current_session_key: str | None = None) -> list[UserSession]:
    """Async twin of :func:`list_sessions`."""
    client = get_async_client()
    current = _current_member(current_session_key)
    out: list[UserSession] = []
    for keys in _user_keys(user):
        out += _parse_list(await calls.arun(client, calls.list_user(keys)), current)
    return sorted(out, key=lambda s: s.last_seen, reverse=True)


def _notify(user: Any, count: int, reason: str) -> None:
    send_ended(user if hasattr(user, "_meta") else None, user_id_of(user), count, reason)


def _end_one_calls(user: Any, session_id: str) -> list[calls.Call[bool]]:
    if not is_valid_member(session_id):
        return []
    return [calls.end_one(keys, session_id) for keys in _user_keys(user)]


def end_session(user: Any, session_id: str, *, reason: str = REASON_REVOKED) -> bool:
    """End the session with public id ``session_id`` if it belongs to ``user``.

    Return whether a live session was ended.
    """
    client = get_client()
    for call in _end_one_calls(user, session_id):
        if calls.run(client, call):
            _notify(user, 1, reason)
            return True
    return False


async def aend_session(user: Any, session_id: str, *, reason: str = REASON_REVOKED) -> bool:
    """Async twin of :func:`end_session`."""
    client = get_async_client()
    for call in _end_one_calls(user, session_id):
        if await calls.arun(client, call):
            _notify(user, 1, reason)
            return True
    return False


def _end_all_calls(user: Any, keep_key: str | None, keep_id: str | None) -> list[calls.Call[int]]:
    member = member_of(keep_key) if keep_key else keep_id
    return [calls.end_all(keys, member) for keys in _user_keys(user)]


def end_sessions(
    user: Any,
    *,
    keep_session_key: str | None = None,
    keep_session_id: str | None = None,
    reason: str = REASON_LOGOUT_EVERYWHERE,
) -> int:
    """End every live session of ``user``, except the one to keep, if given.

    Name the session to keep by its key (``keep_session_key``, e.g. the
    request's) or its public id (``keep_session_id``). Return how many
    ended. Sessions that start after this call are not affected; every
    session that existed before is, atomically, including requests in
    flight: their saves fail with ``UpdateError``.
    """
    client = get_client()
    count = 0
    for call in _end_all_calls(user, keep_session_key, keep_session_id):
        count += calls.run(client, call)
    _notify(user, count, reason)
    return count


async def aend_sessions(
    user: Any,
    *,
    keep_session_key: str | None = None,
    keep_session_id: str | None = None,
    reason: str = REASON_LOGOUT_EVERYWHERE,
) -> int:
    """Async twin of :func:`end_sessions`."""
    client = get_async_client()
    count = 0
    for call in _end_all_calls(user, keep_session_key, keep_session_id):
        count += await calls.arun(client, call)
    _notify(user, count, reason)
    return count


def _index_pattern() -> str:
    return index_pattern(key_prefix())


def _since(active_within: timedelta | None) -> int:
    if active_within is None:
        return 2**40  # far future: nothing counts as active
    return int(time.time() - active_within.total_seconds())


def session_stats(active_within: timedelta | None = None) -> SessionStats:
    """Count live sessions, distinct users and, optionally, recently active sessions.

    The cost grows with the number of users (one read-only call each).
    """
    client: Any = get_client()
    since = _since(active_within)
    sessions = users = active = 0
    with translated():
        for index in client.scan_iter(match=_index_pattern(), count=1000, _type="zset"):
            live, seen = calls.run(client, calls.stats(UserKeys.for_index(index), since))
            sessions, users, active = sessions + live, users + (live > 0), active + seen
    return SessionStats(sessions, users, active if active_within is not None else None)


async def asession_stats(active_within: timedelta | None = None) -> SessionStats:
    """Async twin of :func:`session_stats`."""
    client: Any = get_async_client()
    since = _since(active_within)
    sessions = users = active = 0
    with translated():
        async for index in client.scan_iter(match=_index_pattern(), count=1000, _type="zset"):
            call = calls.stats(UserKeys.for_index(index), since)
            live, seen = await calls.arun(client, call)
            sessions, users, active = sessions + live, users + (live > 0), active + seen
    return SessionStats(sessions, users, active if active_within is not None else None)


def end_all_users(*, reason: str = "all_users") -> tuple[int, int]:
    """End every session of every user on the site; return (sessions, users).

    One call per user index, found with ``SCAN``. The signal is sent once,
    with ``user`` None, ``user_id`` "*" and the total count.
    """
    client: Any = get_client()
    sessions = users = 0
    with translated():
        for index in client.scan_iter(match=_index_pattern(), count=1000, _type="zset"):
            ended = calls.run(client, calls.end_all(UserKeys.for_index(index)))
            sessions, users = sessions + ended, users + (ended > 0)
    send_ended(None, "*", sessions, reason)
    return sessions, users
