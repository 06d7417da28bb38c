"""Views that change a password the ways sites do, for tests/test_password_change.py."""

from __future__ import annotations

from django.contrib.auth import (
    SESSION_KEY,
    aupdate_session_auth_hash,
    get_user_model,
    update_session_auth_hash,
)
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from testproject.urls import urlpatterns as site


def refresh(request: HttpRequest) -> JsonResponse:
    """Give the session the user's current hash, as a view would after a change elsewhere."""
    uid = request.session.get(SESSION_KEY)
    if uid is not None:
        update_session_auth_hash(request, get_user_model().objects.get(pk=uid))
    return JsonResponse({"user": str(request.user)})


def refresh_then_save(request: HttpRequest) -> HttpResponse:
    """Set the password, refresh the session, and only then save the user."""
    user = request.user
    user.set_password(request.POST["password"])  # type: ignore[union-attr]
    update_session_auth_hash(request, user)
    user.save()  # type: ignore[union-attr]
    return HttpResponse("ok")


def change_only(request: HttpRequest) -> HttpResponse:
    """Change the password without refreshing the session (Django ends it, lazily)."""
    user = request.user
    user.set_password(request.POST["password"])  # type: ignore[union-attr]
    user.save()  # type: ignore[union-attr]
    return HttpResponse("ok")


async def achange(request: HttpRequest) -> HttpResponse:
    """An async password change that also saves the session itself, asynchronously."""
    user = await request.auser()
    # Django 5.2's aupdate_session_auth_hash() reads request.user, which would
    # load the user synchronously in an async view; give it the loaded one.
    request.user = user
    user.set_password(request.POST["password"])  # type: ignore[union-attr]
    await user.asave()  # type: ignore[union-attr]
    await aupdate_session_auth_hash(request, user)
    await request.session.asave()
    return HttpResponse("ok")


urlpatterns = [
    path("refresh/", refresh),
    path("refresh-then-save/", refresh_then_save),
    path("change-only/", change_only),
    path("achange/", achange),
    *site,
]
