from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CharonSessionsConfig(AppConfig):
    name = "django_charon_sessions"
    verbose_name = _("Charon sessions")
    # The one model (no table) keeps this key type whatever the project default.
    default_auto_field = "django.db.models.AutoField"

    def ready(self) -> None:
        # Registering only: no check runs, and nothing talks to Redis, here.
        from . import checks, deploy, receivers

        checks.register()
        deploy.register()
        receivers.connect()
        if checks.admin_wanted() and _admin_installed():
            # The admin's own ready() has run autodiscover() by now when it
            # is listed first; W006 says so when it is not. An admin that
            # has the mixin already is left as it is.
            from .admin import adopt_user_admin
            from .sitewide import register

            adopt_user_admin()
            register()


def _admin_installed() -> bool:
    from django.apps import apps

    return apps.is_installed("django.contrib.admin")
