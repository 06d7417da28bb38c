"""Small views that exercise the session engine in the demo and the tests."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render


def home(request: HttpRequest) -> HttpResponse:
    visits = request.session.get("visits", 0) + 1
    request.session["visits"] = visits
    return render(request, "demo/home.html", {"visits": visits})


def session_json(request: HttpRequest) -> JsonResponse:
    """Return the session's data; used by the tests."""
    return JsonResponse({"data": dict(request.session.items())})


def set_value(request: HttpRequest, name: str, value: str) -> JsonResponse:
    """Store one key; used by the tests (GET on purpose: no CSRF dance)."""
    request.session[name] = value
    return JsonResponse({"ok": True})
