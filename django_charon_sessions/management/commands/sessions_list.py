"""manage.py sessions_list: one user's sessions, or activity over all users."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ... import activity, api
from ...conf import charon_settings
from ..base import (
    SessionsCommand,
    add_users,
    describe_user,
    parse_duration,
    plural,
    resolve_user,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from django.core.management.base import CommandParser

COLUMNS = ("ID", "CREATED", "LAST SEEN", "IP", "BROWSER / OS", "EXPIRES")
LOCATION = "LOCATION"


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _span(window: timedelta) -> str:
    seconds = int(window.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


class Command(SessionsCommand):
    help = (
        "List a user's live sessions (public id, created, last seen, IP, browser and OS, "
        "expiry; with -v 2 each one's whole user agent too), or, with no USER, how many "
        "sessions and users are live and active."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        add_users(parser, many=False)
        parser.add_argument(
            "--active-within",
            default="15m",
            metavar="DURATION",
            help="For the summary: count sessions seen within this long (900, 15m, 2h, 7d; "
            "default 15m).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # Checked even when a USER makes it unused: a mistake is never silent.
        window = parse_duration(options["active_within"], "--active-within")
        if options["user"] is None:
            return self._summary(window)
        user = resolve_user(options["user"])
        sessions = api.list_sessions(user)
        if self.as_json:
            self.emit_json(
                [
                    {
                        "id": s.id,
                        "created": s.created.isoformat(),
                        "last_seen": s.last_seen.isoformat(),
                        "expires": s.expires.isoformat(),
                        "ip": s.ip,
                        "location": s.location,
                        "browser": s.browser,
                        "os": s.os,
                    }
                    for s in sessions
                ]
            )
            return None
        if not sessions:
            self.say(f"{describe_user(user)} has no live sessions.")
            return None
        rows: list[tuple[str, ...]] = [COLUMNS, *(
            (s.id, _when(s.created), _when(s.last_seen), s.ip or "-",
             f"{s.browser} / {s.os}", _when(s.expires))
            for s in sessions
        )]  # fmt: skip
        if any(s.location for s in sessions):
            # After the IP it locates; only when there is one, so nothing changes without it.
            locations = [LOCATION] + [s.location or "-" for s in sessions]
            rows = [(*row[:4], loc, *row[4:]) for row, loc in zip(rows, locations, strict=True)]
        for line in _table(rows):
            self.say(line)
        # The detail the table cuts short: each session's whole user agent.
        for s in sessions:
            self.say(f"  {s.id}  user agent: {s.user_agent or '-'}", level=2)
        self.say(f"{plural(len(sessions), 'live session')} of {describe_user(user)}.")
        return None

    def _summary(self, seconds: int) -> None:
        stats = api.session_stats(active_within=timedelta(seconds=seconds))
        tracked = charon_settings.SITE_ACTIVITY
        online = activity.online() if tracked else []
        if self.as_json:
            self.emit_json(
                {
                    "sessions": stats.sessions,
                    "users": stats.users,
                    "active": stats.active,
                    "active_within_seconds": seconds,
                    # None: not tracked (SITE_ACTIVITY is off).
                    "online": [
                        {
                            "within_seconds": int(o.window.total_seconds()),
                            "sessions": o.sessions,
                            "users": o.users,
                        }
                        for o in online
                    ]
                    if tracked
                    else None,
                }
            )
            return
        self.say(f"Live sessions: {stats.sessions}")
        self.say(f"Users with live sessions: {stats.users}")
        self.say(f"Active within {seconds}s: {stats.active}")
        if not tracked:
            self.say("Who is online: not tracked (SITE_ACTIVITY is off)")
        for o in online:
            self.say(
                f"Seen within {_span(o.window)}: {plural(o.users, 'user')}, "
                f"{plural(o.sessions, 'session')}"
            )
