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
        "SESSION_ENGINE logs nobody out. Run it right after the switch. Resumable: an "
        "interrupted run continues where it stopped; a finished one is not repeated."
    )

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
            help="Ignore the checkpoint and start from the beginning.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        source = options["source"]
        batch_size = parse_count(options["batch_size"], "--batch-size")
        if source == "cache":
            self._check_cache(options["cache_alias"])
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
        if report.finished and report.seen == 0 and report.resumed:
            self.say(f"The import from {source} has already finished; use --restart to redo it.")
            return
        verb = "Would import" if report.dry_run else "Imported"
        self.say(
            f"{verb} {plural(report.imported, 'session')} from {source}; skipped "
            f"{report.skipped_expired} expired and {report.already_present} already present; "
            f"{report.failed} failed."
        )

    def _check_cache(self, alias: str) -> None:
        from django.conf import settings

        backend = str(settings.CACHES.get(alias, {}).get("BACKEND", ""))
        if not backend.startswith("django_redis."):
            found = backend or "not in CACHES"
            raise CommandError(f"--from cache needs a django-redis cache; {alias!r} is {found}.")

    def _show(self, report: ImportReport) -> None:
        self.progress(f"{report.seen} sessions read, {report.imported} imported")
