"""Record each sign-in's session key, as device-listing apps do at login."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from .models import DeviceLogin


@receiver(user_logged_in, dispatch_uid="demo.record_device_login")
def record_device_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """Store ``request.session.session_key`` as read right after ``login()``.

    The key may be None here (``login()`` flushed the session of another
    user and nothing has saved it yet): there is nothing to record then.
    """
    session = getattr(request, "session", None)
    key = None if session is None else session.session_key
    if key is not None:
        DeviceLogin.objects.create(user=user, session_key=key)
