"""Create the demo's users (idempotent): admin/admin-password and demo/demo-password."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

USERS = [
    ("admin", "admin-password", True),
    ("demo", "demo-password", False),
]


class Command(BaseCommand):
    help = "Create the demo superuser (admin / admin-password) and user (demo / demo-password)."

    def handle(self, *args: Any, **options: Any) -> None:
        model = get_user_model()
        for username, password, is_admin in USERS:
            user, created = model.objects.get_or_create(username=username)
            user.is_staff = user.is_superuser = is_admin
            user.set_password(password)
            user.save()
            verb = "Created" if created else "Reset"
            self.stdout.write(f"{verb} user {username!r} with password {password!r}.")
