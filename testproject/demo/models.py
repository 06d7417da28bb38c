"""A user model keyed by UUID, used when CHARON_TEST_USER_MODEL=uuid.

The test suite runs once with Django's own ``auth.User`` (integer keys) and
once with this model, so every per-user feature is exercised with a primary
key that is not an integer. The class exists only when it is the
``AUTH_USER_MODEL``, so it never clashes with ``auth.User``.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models

if settings.AUTH_USER_MODEL == "demo.User":

    class User(AbstractUser):
        id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
