"""manage.py sessions_import: move sessions from Django's engines into this one."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from django.core.management.base import CommandError

from ...importer import SOURCES, ImportReport, import_sessions
from ..base import SessionsCommand, add_batch_size, parse_count, plural

if TYPE_CHECKING:
    from django.core.management.base import CommandParser


class Command(SessionsCommand):
    help = (
        "Copy the sessions of the engine the site used before (db, cached_db, or cache on "
        "django-redis) into this one, keeping every cookie valid, so switching "
        "SESSION_ENGINE logs nobody out. Run it before the switch and again right after "
        "(docs: migrating.md); any number of runs is safe: a session ended or moved "
        "here since an earlier run is never written back, and the copy of one that left "
        "the source is removed. An interrupted run continues where it stopped."
    )

    #: Rows in the source table, for the progress line (None: not counted).
    total: int | None = None

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--from", dest="source", choices=SOURCES, required=True, help="The old engine."
        )
        parser.add_argument(
            "--cache-alias",
            default="default",
            help="With --from cache: the django-redis cache that held the sessions "
            "(SESSION_CACHE_ALIAS; default 'default').",
        )
        add_batch_size(parser, 500, "Sessions per step")
        parser.add_argument("--dry-run", action="store_true", help="Read and count; write nothing.")
        parser.add_argument(
            "--restart",
            action="store_true",
            help="Start an interrupted run over from the beginning instead of resuming it.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        source = options["source"]
        batch_size = parse_count(options["batch_size"], "--batch-size")
        if source == "cache":
            self._check_cache(options["cache_alias"])
        self.total = self._rows() if source != "cache" and self.shows_progress() else None
        report = import_sessions(
            source,
            cache_alias=options["cache_alias"],
            batch_size=batch_size,
            dry_run=options["dry_run"],
            restart=options["restart"],
            progress=self._show,
        )
        self.end_progress()
        if self.as_json:
            self.emit_json(asdict(report))
            return
        self.say(self._summary(report))

    def _summary(self, report: ImportReport) -> str:
        verb = "Would import" if report.dry_run else "Imported"
        lines = [
            f"{verb} {plural(report.imported, 'session')} from {report.source}; skipped "
            f"{report.skipped_expired} expired and {report.already_present} already present; "
            f"{report.failed} failed."
        ]
        if report.ended:
            lines.append(
                f"Refused {plural(report.ended, 'session')} ended, moved or expired here "
                "since an earlier run."
            )
        if report.removed or report.kept:
            verb = "Would remove at most" if report.dry_run else "Removed"
            line = f"{verb} {plural(report.removed, 'session')} gone from the source"
            if report.kept:
                line += f"; kept {report.kept} this engine has changed since"
            lines.append(line + ".")
        if report.resumed:
            lines.append(
                "This run resumed an interrupted one, so it did not look for sessions gone "
                "from the source: run it once more."
            )
        return "\n".join(lines)

    def _check_cache(self, alias: str) -> None:
        from django.conf import settings

        backend = str(settings.CACHES.get(alias, {}).get("BACKEND", ""))
        if not backend.startswith("django_redis."):
            found = backend or "not in CACHES"
            raise CommandError(f"--from cache needs a django-redis cache; {alias!r} is {found}.")

    def _rows(self) -> int:
        # The table's size, for the progress line; a cache has no cheap count.
        from django.contrib.sessions.models import Session

        return int(Session.objects.count())

    def _show(self, report: ImportReport) -> None:
        read = f"{report.seen} of {self.total}" if self.total else str(report.seen)
        self.progress(
            f"{read} sessions read, {report.imported} imported, "
            f"{self.pace(report.seen, self.total)}"
        )
