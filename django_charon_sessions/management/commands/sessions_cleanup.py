"""manage.py sessions_cleanup: remove stale index entries and ended sessions' data."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from ...maintenance import DEFAULT_BATCH, CleanupReport, cleanup
from ..base import (
    SessionsCommand,
    add_batch_size,
    describe_user,
    parse_count,
    plural,
    users_by_tag,
)

if TYPE_CHECKING:
    from django.core.management.base import CommandParser


class Command(SessionsCommand):
    help = (
        "Remove user-index entries whose session expired or vanished (evicted, for example) "
        "and the leftover data of ended sessions, then report what is live. Safe to run "
        "from cron, and to run twice at once: Redis expires sessions by itself, so this "
        "only reclaims memory and reports."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        add_batch_size(parser, DEFAULT_BATCH, "Keys asked of SCAN per step")
        parser.add_argument(
            "--dry-run", action="store_true", help="Report what would be removed; remove nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        report = cleanup(
            batch_size=parse_count(options["batch_size"], "--batch-size"),
            dry_run=bool(options["dry_run"]),
            detail=self.verbosity >= 2,
            progress=self._show,
        )
        self.end_progress()
        users = users_by_tag({d.tag for d in report.details}) if report.details else {}
        if self.as_json:
            data = asdict(report)
            if self.verbosity < 2:
                del data["details"]
            for detail in data.get("details", []):
                who = users.get(detail["tag"])
                detail["user"] = who.get_username() if who is not None else None
                detail["pk"] = str(who.pk) if who is not None else None
            self.emit_json(data)
            return
        for detail in report.details:
            who = users.get(detail.tag)
            name = (
                describe_user(who) if who is not None else f"not in the database (tag {detail.tag})"
            )
            self.say(
                f"  user {name}: {detail.expired} expired, {detail.vanished} vanished, "
                f"{detail.live} live",
                level=2,
            )
        verb = "Would remove" if report.dry_run else "Removed"
        stale = plural(report.expired + report.vanished, "stale index entry", "stale index entries")
        self.say(
            f"{verb} {stale} ({report.expired} expired, {report.vanished} vanished) and the "
            f"data of {plural(report.ended_purged, 'ended session')}."
        )
        scanned = plural(report.indexes, "user index", "user indexes")
        self.say(
            f"Live: {plural(report.live_sessions, 'session')} of "
            f"{plural(report.users, 'user')} ({scanned} scanned)."
        )

    def _show(self, report: CleanupReport) -> None:
        scanned = plural(report.indexes, "user index", "user indexes")
        removed = plural(report.removed, "entry", "entries")
        self.progress(
            f"{scanned} scanned, {removed} {'to remove' if report.dry_run else 'removed'}, "
            f"{self.pace(report.indexes)}"
        )
