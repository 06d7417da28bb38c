"""What the app's management commands share: --json, progress, Redis errors."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
from typing import TYPE_CHECKING, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import translation

from ..exceptions import SessionStoreError

if TYPE_CHECKING:
    from collections.abc import Collection

# The limits of what the commands accept, in one place. Ten years covers any
# session's lifetime; a larger window would only overflow datetime arithmetic.
MAX_DURATION = 3650 * 86400
# More per step buys nothing and makes one Redis call or SQL query huge.
MAX_BATCH_SIZE = 100_000

_DURATION = re.compile(r"([0-9]+)([smhd]?)")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_COUNT = re.compile(r"[0-9]+")


class SessionsCommand(BaseCommand):
    """A command that prints for people by default and for scripts with --json."""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print one JSON document on standard output instead of text.",
        )

    def run_from_argv(self, argv: list[str]) -> None:
        # Output piped into `head` (or a pager that quits): the reader is gone,
        # so stop quietly instead of ending in a BrokenPipeError traceback.
        try:
            super().run_from_argv(argv)
            sys.stdout.flush()  # a buffered pipe fails here, not in the writes
        except BrokenPipeError:
            _silence_stdout()
            sys.exit(1)

    def execute(self, *args: Any, **options: Any) -> str | None:
        self.as_json = bool(options.get("json"))
        self.verbosity = int(options.get("verbosity", 1))
        self.started = time.monotonic()
        # Output stays in English, whatever LANGUAGE_CODE says: operators
        # grep it, scripts parse it and it goes into bug reports.
        try:
            with translation.override(None):
                return super().execute(*args, **options)
        except SessionStoreError as exc:
            raise CommandError(str(exc)) from exc

    def emit_json(self, data: Any) -> None:
        self.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str))

    def say(self, text: str, level: int = 1) -> None:
        """Write a line for people (nothing under --json or a lower verbosity)."""
        if not self.as_json and self.verbosity >= level:
            self.stdout.write(text)

    def shows_progress(self) -> bool:
        """Return whether progress lines are shown (on a terminal, not with --json)."""
        return not self.as_json and self.verbosity >= 1 and sys.stderr.isatty()

    def progress(self, text: str) -> None:
        """Show a progress line on a terminal; silent in pipes, cron and --json."""
        if self.shows_progress():
            sys.stderr.write(f"\r{text}\033[K")
            sys.stderr.flush()

    def pace(self, done: int, total: int | None = None) -> str:
        """Return the share of ``total`` that ``done`` is (when known) and the rate per second."""
        elapsed = max(time.monotonic() - self.started, 1e-3)
        rate = f"{done / elapsed:.0f}/s"
        if not total:
            return rate
        return f"{min(done, total) * 100 // total}%, {rate}"

    def end_progress(self) -> None:
        if not self.as_json and self.verbosity >= 1 and sys.stderr.isatty():
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _silence_stdout() -> None:
    # Python flushes stdout once more at exit: point it at /dev/null first.
    devnull = os.open(os.devnull, os.O_WRONLY)
    with contextlib.suppress(OSError, ValueError):
        os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def add_batch_size(parser: CommandParser, default: int, what: str) -> None:
    """Add ``--batch-size``; read it with :func:`parse_count` in ``handle``."""
    parser.add_argument(
        "--batch-size",
        default=default,
        metavar="N",
        help=f"{what} (1 to {MAX_BATCH_SIZE}; default {default}).",
    )


def add_users(parser: CommandParser, many: bool) -> None:
    """Add the USER positional argument(s): a primary key, username or email."""
    parser.add_argument(
        "users" if many else "user",
        nargs="*" if many else "?",
        metavar="USER",
        help="Primary key, username or email.",
    )


def _shown(value: object) -> str:
    # A mistyped option is echoed, but never at any length.
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_duration(value: str | int, option: str) -> int:
    """Return seconds for "900", "15m", "2h" or "7d" (0 to ``MAX_DURATION``).

    Raise ``CommandError`` naming ``option`` and the limit otherwise.
    """
    match = _DURATION.fullmatch(str(value).strip())
    if not match:
        raise CommandError(
            f"{option}: {_shown(value)} is not a duration; use seconds or 15m, 2h, 7d."
        )
    digits = match.group(1).lstrip("0")
    # Python refuses to convert thousands of digits: compare lengths first.
    seconds = int(digits or 0) * _UNIT[match.group(2)] if len(digits) <= 18 else MAX_DURATION + 1
    if seconds > MAX_DURATION:
        raise CommandError(
            f"{option}: {_shown(value)} is too long; the limit is {MAX_DURATION // 86400}d "
            f"({MAX_DURATION} seconds)."
        )
    return seconds


def parse_count(value: str | int, option: str, maximum: int = MAX_BATCH_SIZE) -> int:
    """Return a whole number from 1 to ``maximum``.

    Raise ``CommandError`` naming ``option`` and the limits otherwise.
    """
    text = str(value).strip()
    digits = text.lstrip("0") if _COUNT.fullmatch(text) else ""
    number = int(digits) if digits and len(digits) <= 18 else 0
    if not 1 <= number <= maximum:
        raise CommandError(f"{option}: {_shown(value)} is not a whole number from 1 to {maximum}.")
    return number


def plural(n: int, word: str, words: str | None = None) -> str:
    """Return "1 session" or "2 sessions" (``words`` for irregular plurals)."""
    return f"{n} {word}" if n == 1 else f"{n} {words or word + 's'}"


def resolve_user(value: str) -> Any:
    """Return the user named by ``value``: primary key, username field or email.

    Raise CommandError when nothing or more than one user matches.
    """
    from django.contrib.auth import get_user_model
    from django.core.exceptions import FieldDoesNotExist, ValidationError

    model = get_user_model()
    manager = model._default_manager
    lookups: list[dict[str, Any]] = []
    with contextlib.suppress(ValidationError, ValueError, TypeError):
        lookups.append({"pk": model._meta.pk.to_python(value)})
    lookups.append({model.USERNAME_FIELD: value})
    try:
        email_field = model.get_email_field_name()
        model._meta.get_field(email_field)
        lookups.append({f"{email_field}__iexact": value})
    except (AttributeError, FieldDoesNotExist):
        pass
    for lookup in lookups:
        try:
            found = list(manager.filter(**lookup)[:2])
        except (ValidationError, ValueError, TypeError):
            continue
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise CommandError(f"More than one user matches {value!r}; use the primary key.")
    raise CommandError(f"No user matches {value!r} (tried primary key, username and email).")


def describe_user(user: Any) -> str:
    return f"{user.get_username()} (pk {user.pk})"


def users_by_tag(tags: Collection[str]) -> dict[str, Any]:
    """Return the users whose session indexes carry ``tags``, by tag.

    A tag is a keyed hash of the user id and cannot be read back, so the ids
    of the user table are hashed (ids only, in chunks) until every tag is
    found: one pass over the table at most. Tags of no user are left out.
    """
    from django.contrib.auth import get_user_model

    from ..keyspace import user_tags

    wanted = set(tags)
    found: dict[str, Any] = {}
    model = get_user_model()
    for pk in model._default_manager.values_list("pk", flat=True).iterator(chunk_size=2000):
        for tag in user_tags(str(pk)):
            if tag in wanted:
                found[tag] = pk
        if len(found) == len(wanted):
            break
    users = model._default_manager.in_bulk(list(found.values()))
    return {tag: users[pk] for tag, pk in found.items() if pk in users}
