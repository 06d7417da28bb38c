"""Site-wide activity: who is online, and the most recently active sessions of all users.

The "last seen" update (at most once per ``LAST_SEEN_INTERVAL``, inside the
same function call as the load) and sign-in note each signed-in session in
its hash slot's activity sets (see :mod:`.keyspace`). Reading them costs a
fixed number of commands, one or two per hash slot, whatever the number of
sessions: nothing here scans the keyspace.

An entry stays until its window passes, also when its session ends sooner:
the counters count sessions *seen* in a window; the listings check each
entry against its user's index and show live sessions only.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from . import batches, calls
from .api import UserSession, _entry
from .client import get_client
from .keyspace import (
    ACTIVITY_WINDOW_MS,
    UserKeys,
    all_activity_keys,
    key_prefix,
    parse_activity_entry,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from .client import Command, SyncClient

#: The windows "who is online" counts over.
ONLINE_WINDOWS = (timedelta(minutes=5), timedelta(hours=1), timedelta(days=1))
#: The longest window the listings and searches can look back.
LONGEST_WINDOW = timedelta(milliseconds=ACTIVITY_WINDOW_MS)


@dataclass(frozen=True)
class Online:
    """How many sessions and users were seen within ``window``."""

    window: timedelta
    sessions: int
    users: int


@dataclass(frozen=True)
class SiteSession:
    """A live signed-in session of some user, as the site-wide page shows it."""

    user_id: str
    #: When it was last seen, in unix ms: the cursor of the next page.
    seen_ms: int
    session: UserSession


def _now_ms() -> int:
    return int(time.time() * 1000)


def _prepared() -> SyncClient:
    client = get_client()
    batches.prepare(client)
    return client


def online(windows: Sequence[timedelta] = ONLINE_WINDOWS) -> list[Online]:
    """Count the sessions and users seen within each window.

    One read-only call per hash slot. Users are counted within a day at
    most (the user activity sets keep no more).
    """
    client = _prepared()
    now = _now_ms()
    since = [now - int(w.total_seconds() * 1000) for w in windows]
    pairs = all_activity_keys(key_prefix())
    replies = send(client, [calls.activity(pair, since).command() for pair in pairs])
    totals = [0] * (2 * len(windows))
    for reply in replies:
        for n, value in enumerate(reply):
            totals[n] += int(value)
    return [Online(w, totals[n], totals[len(windows) + n]) for n, w in enumerate(windows)]


#: Commands per write: one write of thousands is no faster on Redis, and
#: fakeredis parses a write in time quadratic in its length.
CHUNK = 1024


def send(client: SyncClient, commands: Sequence[Command]) -> list[Any]:
    """Send ``commands`` in batches of :data:`CHUNK`; return the replies in order."""
    out: list[Any] = []
    for start in range(0, len(commands), CHUNK):
        out += batches.send(client, commands[start : start + CHUNK])
    return out


def _pairs(reply: Any) -> list[tuple[int, str]]:
    """Return (score, entry) of a ``WITHSCORES`` reply: flat (RESP2) or in pairs (RESP3)."""
    items = list(reply or [])
    if items and isinstance(items[0], (list, tuple)):
        return [(int(float(score)), _text(entry)) for entry, score in items]
    return [(int(float(items[i + 1])), _text(items[i])) for i in range(0, len(items), 2)]


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _range(key: str, high: str, low: str, count: int) -> Command:
    return ("ZREVRANGEBYSCORE", key, high, low, "WITHSCORES", "LIMIT", 0, count)


def newest(
    client: SyncClient, count: int, *, before_ms: int | None = None, since_ms: int = 0
) -> list[tuple[int, str]]:
    """Return the ``count`` newest activity entries seen before ``before_ms``, since ``since_ms``.

    Two batches, bounded whatever the number of sessions: the newest entry
    of every slot gives a threshold (the ``count``-th newest of those), then
    only the slots whose newest entry reaches it are read, ``count`` at most
    each. Newest first.
    """
    high = "+inf" if before_ms is None else f"({before_ms}"
    low = str(since_ms)
    keys = [pair[0] for pair in all_activity_keys(key_prefix())]
    tops = send(client, [_range(k, high, low, 1) for k in keys])
    heads = [(p[0][0], n) for n, p in enumerate(map(_pairs, tops)) if p]
    if not heads:
        return []
    best = heapq.nlargest(count, heads)
    threshold = best[-1][0] if len(best) == count else since_ms
    wanted = [n for score, n in heads if score >= threshold]
    replies = send(client, [_range(keys[n], high, str(threshold), count) for n in wanted])
    found = [pair for reply in replies for pair in _pairs(reply)]
    return heapq.nlargest(count, found)


def _details(client: SyncClient, entries: Sequence[tuple[int, str]]) -> list[SiteSession]:
    """Return the entries whose session is still live, with what its user's metadata says."""
    prefix, now = key_prefix(), _now_ms()
    parsed = [(score, *parse_activity_entry(entry)) for score, entry in entries]
    commands: list[Command] = []
    for _, tag, member, _ in parsed:
        keys = UserKeys.for_tag(prefix, tag)
        commands += [("ZSCORE", keys.index, member), ("HGET", keys.meta, member)]
    replies = send(client, commands)
    out: list[SiteSession] = []
    for n, (score, _, member, user_id) in enumerate(parsed):
        expiry, meta = replies[2 * n], replies[2 * n + 1]
        if expiry is None or float(expiry) <= now:
            continue  # ended or expired since it was seen
        session = _entry(member, _bytes(expiry), _text(meta or b""), None)
        out.append(SiteSession(user_id, score, session))
    return out


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


def recent_sessions(
    limit: int = 50, *, before_ms: int | None = None
) -> tuple[list[SiteSession], int | None]:
    """Return up to ``limit`` live sessions of all users, most recently seen first.

    Return also the cursor of the next page (pass it as ``before_ms``), None
    on the last page. Looks back :data:`LONGEST_WINDOW` at most. A few
    rounds at most: entries of sessions that ended since are skipped. The
    cursor is a millisecond: a session seen in the same millisecond as the
    last one of a page, but not on it, is not on the next page either.
    """
    client = _prepared()
    since = _now_ms() - ACTIVITY_WINDOW_MS
    out: list[SiteSession] = []
    cursor = before_ms
    for _ in range(4):
        entries = newest(client, limit - len(out), before_ms=cursor, since_ms=since)
        if not entries:
            return out, None
        out += _details(client, entries)
        cursor = entries[-1][0]
        if len(out) >= limit:
            break
    return out, cursor


#: How many of the most recently active sessions a search by IP or browser reads.
SEARCH_LIMIT = 5000


def search_sessions(
    matches: Callable[[UserSession], bool], window: timedelta, limit: int = SEARCH_LIMIT
) -> tuple[list[SiteSession], bool]:
    """Return the live sessions seen within ``window`` for which ``matches`` is true.

    Read at most the ``limit`` most recently seen sessions of the window;
    return also whether the window held more than that (then older ones were
    not searched).
    """
    client = _prepared()
    since = _now_ms() - int(window.total_seconds() * 1000)
    entries = newest(client, limit + 1, since_ms=since)
    cut = len(entries) > limit
    found = [s for s in _details(client, entries[:limit]) if matches(s.session)]
    return found, cut
