"""Two pages: one reads the session, one reads and changes it; both use the user."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path


def read(request: HttpRequest) -> HttpResponse:
    name = request.user.get_username() if request.user.is_authenticated else "-"
    return HttpResponse(f"{name} {request.session.get('theme', '')}")


def write(request: HttpRequest) -> HttpResponse:
    name = request.user.get_username() if request.user.is_authenticated else "-"
    request.session["n"] = request.session.get("n", 0) + 1
    return HttpResponse(f"{name} {request.session['n']}")


urlpatterns = [path("read/", read), path("write/", write)]
