"""manage.py sessions_cleanup: remove stale index entries and ended sessions' data."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from django.core.management.base import CommandError, CommandParser

from ...maintenance import DEFAULT_BATCH, CleanupReport, cleanup
from ..base import SessionsCommand, plural


class Command(SessionsCommand):
    help = (
        "Remove user-index entries whose session expired or vanished (evicted, for example) "
        "and the leftover data of ended sessions, then report what is live. Safe to run "
        "from cron, and to run twice at once: Redis expires sessions by itself, so this "
        "only reclaims memory and reports."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH,
            help=f"Keys asked of SCAN per step, and user indexes per pipeline "
            f"(default {DEFAULT_BATCH}).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Report what would be removed; remove nothing."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        batch = int(options["batch_size"])
        if batch < 1:
            raise CommandError("--batch-size must be 1 or more.")
        report = cleanup(
            batch_size=batch,
            dry_run=bool(options["dry_run"]),
            detail=self.verbosity >= 2,
            progress=self._show,
        )
        self.end_progress()
        if self.as_json:
            data = asdict(report)
            if self.verbosity < 2:
                del data["details"]
            self.emit_json(data)
            return
        for user in report.details:
            self.say(
                f"  user {user.tag}: {user.expired} expired, {user.vanished} vanished, "
                f"{user.live} live",
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
            f"{scanned} scanned, {removed} {'to remove' if report.dry_run else 'removed'}"
        )
