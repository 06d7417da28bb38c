from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest, HttpResponse
from django.urls import path


class ImpersonateMixin:
    change_form_template = "wrapper/change_form.html"

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(self.impersonate_view)
        ours = [path("<path:object_id>/impersonate/", view, name="auth_user_impersonate")]
        return ours + super().get_urls()

    def impersonate_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return HttpResponse(f"impersonating {object_id}")


def wrap() -> None:
    model = get_user_model()
    current = type(admin.site._registry[model])
    admin.site.unregister(model)
    admin.site.register(
        model,
        type(f"Wrapped{current.__name__}", (ImpersonateMixin, current), {"__module__": __name__}),
    )


def replace() -> None:
    model = get_user_model()
    admin.site.unregister(model)
    admin.site.register(
        model, type("Replaced", (ImpersonateMixin, UserAdmin), {"__module__": __name__})
    )
