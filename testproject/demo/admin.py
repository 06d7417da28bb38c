"""The UUID user model's admin: a site's own ModelAdmin, adopted automatically."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

if settings.AUTH_USER_MODEL == "demo.User":
    from .models import User

    @admin.register(User)
    class DemoUserAdmin(UserAdmin):
        list_display = ("username", "email", "is_staff", "last_login")
