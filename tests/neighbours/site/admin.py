from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin

from django_charon_sessions.admin import SessionsAdminMixin

admin.site.unregister(get_user_model())


@admin.register(get_user_model())
class SiteUserAdmin(SessionsAdminMixin, BaseUserAdmin):
    list_display = ("username", "email", "last_login")
