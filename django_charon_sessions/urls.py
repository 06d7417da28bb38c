"""The users' own sessions page.

Include it in the URLconf where signed-in users can reach it::

    path("account/sessions/", include("django_charon_sessions.urls")),

The page's URL name is ``charon_sessions:list``.
"""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "charon_sessions"

urlpatterns = [
    path("", views.my_sessions, name="list"),
]
