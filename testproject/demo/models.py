"""The demo's models.

``DeviceLogin`` records the session key of each sign-in in a column of the
size of Django's own ``Session.session_key`` (40 characters), as apps that
list a user's devices do (allauth's usersessions, say); a receiver of
``user_logged_in`` (see :mod:`.receivers`) writes it. The tests run it on
PostgreSQL, which, unlike SQLite, refuses longer values.

``User`` is a user model keyed by UUID, used when CHARON_TEST_USER_MODEL=uuid.
The test suite runs once with Django's own ``auth.User`` (integer keys) and
once with this model, so every per-user feature is exercised with a primary
key that is not an integer. The class exists only when it is the
``AUTH_USER_MODEL``, so it never clashes with ``auth.User``; its migration
(0001) creates it only then, too.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models

if settings.AUTH_USER_MODEL == "demo.User":

    class User(AbstractUser):
        id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)


class DeviceLogin(models.Model):
    """One sign-in: who, with which session key, when."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="device_logins"
    )
    session_key = models.CharField(max_length=40)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("created", "id")

    def __str__(self) -> str:
        return f"{self.user_id} {self.session_key[:8]}… {self.created:%Y-%m-%d %H:%M}"
