from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from testproject.demo import views

urlpatterns = [
    path("", views.home, name="home"),
    path("session.json", views.session_json, name="session-json"),
    path("set/<str:name>/<str:value>/", views.set_value, name="set-value"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("accounts/sessions/", include("django_charon_sessions.urls")),
    path("admin/", admin.site.urls),
]
