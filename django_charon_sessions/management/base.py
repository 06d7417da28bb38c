"""What the app's management commands share: --json, progress, Redis errors."""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ..exceptions import SessionStoreError


class SessionsCommand(BaseCommand):
    """A command that prints for people by default and for scripts with --json."""

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--json",
            action="store_true",
            help="Print one JSON document on standard output instead of text.",
        )

    def execute(self, *args: Any, **options: Any) -> str | None:
        self.as_json = bool(options.get("json"))
        self.verbosity = int(options.get("verbosity", 1))
        try:
            return super().execute(*args, **options)
        except SessionStoreError as exc:
            raise CommandError(str(exc)) from exc

    def emit_json(self, data: Any) -> None:
        self.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str))

    def say(self, text: str, level: int = 1) -> None:
        """Write a line for people (nothing under --json or a lower verbosity)."""
        if not self.as_json and self.verbosity >= level:
            self.stdout.write(text)

    def progress(self, text: str) -> None:
        """Show a progress line on a terminal; silent in pipes, cron and --json."""
        if not self.as_json and self.verbosity >= 1 and sys.stderr.isatty():
            sys.stderr.write(f"\r{text}\033[K")
            sys.stderr.flush()

    def end_progress(self) -> None:
        if not self.as_json and self.verbosity >= 1 and sys.stderr.isatty():
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def positive_int(value: str) -> int:
    """Parse an option that must be a whole number of 1 or more."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value!r}")
    return number


def add_batch_size(parser: CommandParser, default: int, what: str) -> None:
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=default,
        help=f"{what} (default {default}).",
    )


def add_users(parser: CommandParser, many: bool) -> None:
    """Add the USER positional argument(s): a primary key, username or email."""
    parser.add_argument(
        "users" if many else "user",
        nargs="*" if many else "?",
        metavar="USER",
        help="Primary key, username or email.",
    )


_DURATION = re.compile(r"^(\d+)([smhd]?)$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str) -> int:
    """Return seconds for "900", "15m", "2h" or "7d"; raise CommandError otherwise."""
    match = _DURATION.match(value.strip())
    if not match:
        raise CommandError(f"{value!r} is not a duration; use seconds or 15m, 2h, 7d.")
    return int(match.group(1)) * _UNIT[match.group(2)]


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
