from __future__ import annotations

from django.apps import AppConfig


class WrappingConfig(AppConfig):
    name = "tests.neighbours.wrapper"
    default = True

    def ready(self) -> None:
        from .patch import wrap

        wrap()


class ReplacingConfig(AppConfig):
    name = "tests.neighbours.wrapper"

    def ready(self) -> None:
        from .patch import replace

        replace()
