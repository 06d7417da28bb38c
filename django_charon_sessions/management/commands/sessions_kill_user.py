"""manage.py sessions_kill_user: end every session of some users, or of everyone."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from ... import api
from ...keyspace import is_valid_member
from ..base import SessionsCommand, add_users, describe_user, plural, resolve_user


class Command(SessionsCommand):
    help = (
        "End every session of the given users at once (log out everywhere). Users are "
        "named by primary key, username or email. Requests of theirs already in flight "
        "cannot save their session back."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        add_users(parser, many=True)
        parser.add_argument(
            "--keep-session",
            metavar="PUBLIC_ID",
            help="Spare the session with this public id (see sessions_list).",
        )
        parser.add_argument(
            "--all-users",
            action="store_true",
            help="End every session of every user on the site (needs --yes).",
        )
        parser.add_argument("--yes", action="store_true", help="Confirm --all-users.")
        parser.add_argument(
            "--dry-run", action="store_true", help="Report how many would end; end nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        names: list[str] = options["users"]
        keep = options["keep_session"]
        dry_run = bool(options["dry_run"])
        if options["all_users"]:
            if names or keep:
                raise CommandError("--all-users takes no USER and no --keep-session.")
            if not (options["yes"] or dry_run):
                raise CommandError("--all-users ends every session on the site; add --yes.")
            return self._all_users(dry_run)
        if not names:
            raise CommandError("Name at least one USER, or use --all-users --yes.")
        if keep is not None and not is_valid_member(keep):
            # Not echoed: what was pasted here may be a session key (a cookie).
            raise CommandError(
                "--keep-session takes a public session id: 26 hex digits, as shown by "
                "sessions_list (not a session key)."
            )
        users = [resolve_user(name) for name in names]  # all or nothing
        results = []
        for user in users:
            if dry_run:
                ended = sum(s.id != keep for s in api.list_sessions(user))
            else:
                ended = api.end_sessions(user, keep_session_id=keep)
            results.append({"user": user.get_username(), "pk": str(user.pk), "ended": ended})
            verb = "Would end" if dry_run else "Ended"
            self.say(f"{verb} {plural(ended, 'session')} of {describe_user(user)}.")
        total = sum(int(r["ended"]) for r in results)
        if self.as_json:
            self.emit_json({"dry_run": dry_run, "users": results, "total": total})
        elif len(results) > 1:
            verb = "Would end" if dry_run else "Ended"
            self.say(f"{verb} {plural(total, 'session')} of {plural(len(results), 'user')} in all.")

    def _all_users(self, dry_run: bool) -> None:
        if dry_run:
            stats = api.session_stats()
            sessions, users = stats.sessions, stats.users
        else:
            sessions, users = api.end_all_users()
        if self.as_json:
            self.emit_json(
                {"dry_run": dry_run, "all_users": True, "total": sessions, "user_count": users}
            )
            return
        verb = "Would end" if dry_run else "Ended"
        self.say(f"{verb} {plural(sessions, 'session')} of {plural(users, 'user')}.")
