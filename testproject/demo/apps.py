from __future__ import annotations

from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "testproject.demo"
    label = "demo"

    def ready(self) -> None:
        from . import receivers  # noqa: F401  (connects the user_logged_in receiver)
