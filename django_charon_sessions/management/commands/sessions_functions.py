"""manage.py sessions_functions: see and load the Redis function library."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from ... import calls
from ... import library as fn
from ...client import get_client
from ...errors import REDIS_ERRORS, describe_target, translate
from ..base import SessionsCommand


class Command(SessionsCommand):
    help = (
        "Show which versions of the session store's Redis function library each server "
        "holds (status), load this version (load), or print its source (source) for an "
        "operator to load with: redis-cli -x FUNCTION LOAD REPLACE < charon.lua"
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "action", choices=["status", "load", "source"], nargs="?", default="status"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "source":
            self.stdout.write(fn.SOURCE, ending="")
            return
        client = get_client()
        if action == "load":
            calls.load_library(client)
        try:
            per_node = {
                node: sorted(n for n in names if n.startswith("charon_"))
                for node, names in fn.libraries_per_node(client).items()
            }
        except REDIS_ERRORS as exc:
            raise CommandError(str(translate(exc))) from exc
        missing = sorted(node for node, names in per_node.items() if fn.LIBRARY not in names)
        if self.as_json:
            self.emit_json({"library": fn.LIBRARY, "loaded": not missing, "servers": per_node})
            return
        if action == "load":
            self.say(f"Loaded {fn.LIBRARY} on {describe_target()}.")
        self.say(f"This version needs {fn.LIBRARY}.")
        for node, names in sorted(per_node.items()):
            shown = ", ".join(names) or "no charon library"
            self.say(f"  {node}: {shown}")
        if missing:
            self.say(f"Missing on: {', '.join(missing)}. Run: manage.py sessions_functions load")
