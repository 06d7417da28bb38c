"""The admin index's entry for the site-wide sessions page; no table.

Sessions live in Redis, not in the database: :class:`SiteSession` is an
unmanaged model with no permissions of its own, registered only so that the
admin index lists a "Sessions" page (:class:`.admin.SiteSessionsAdmin`).
Who may see and act on it is decided by the user model's permissions.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class SiteSession(models.Model):
    """Stand in for the sessions of all users in the admin (never queried)."""

    class Meta:
        managed = False
        default_permissions = ()
        verbose_name = _("session")
        verbose_name_plural = _("sessions")

    def __str__(self) -> str:
        return str(self._meta.verbose_name)
