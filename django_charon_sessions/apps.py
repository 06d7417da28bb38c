from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CharonSessionsConfig(AppConfig):
    name = "django_charon_sessions"
    verbose_name = _("Charon sessions")

    def ready(self) -> None:
        # Registering only: no check runs, and nothing talks to Redis, here.
        from . import checks, receivers

        checks.register()
        receivers.connect()
