"""The page where signed-in users see their own sessions and end the others."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import REDIRECT_FIELD_NAME, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseBadRequest, HttpResponseRedirect, QueryDict
from django.shortcuts import render, resolve_url
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods

from .api import end_session, end_sessions, list_sessions, public_id
from .conf import charon_settings
from .forms import ConfirmPasswordForm
from .keyspace import is_valid_member
from .receivers import AUTH_TIME_KEY
from .signals import REASON_LOGOUT_EVERYWHERE, REASON_REVOKED
from .wording import describe_session

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse

TEMPLATE = "django_charon_sessions/sessions.html"
END_OTHERS = "others"


def needs_password(request: HttpRequest) -> bool:
    """Return whether ending sessions must first confirm the password.

    True when the sign-in (or the last confirmation) is older than
    ``REAUTHENTICATE_AFTER`` seconds, or its time is unknown.
    """
    after = charon_settings.REAUTHENTICATE_AFTER
    if after is None:
        return False
    stamp = request.session.get(AUTH_TIME_KEY)
    if not isinstance(stamp, int):
        return True
    return time.time() - stamp >= after


@login_required
@csrf_protect
@require_http_methods(["GET", "HEAD", "POST"])
def my_sessions(request: HttpRequest) -> HttpResponse:
    """List the user's sessions (GET); end one or all the others (POST)."""
    form = ConfirmPasswordForm(request=request) if needs_password(request) else None
    if form is not None and not getattr(request.user, "has_usable_password", bool)():
        # No password to ask for (single sign-on, say): a fresh sign-in instead.
        if request.method == "POST":
            return HttpResponseRedirect(_sign_in_again_url())
        return _page(request, None, sign_in_again=True)
    if request.method == "POST":
        target = request.POST.get("end", "")
        if target != END_OTHERS and not is_valid_member(target):
            return HttpResponseBadRequest(_("Say which session to end."))
        if form is not None:
            form = ConfirmPasswordForm(request.POST, request=request)
            if not form.is_valid():
                return _page(request, form)
            # authenticate() may have upgraded the password's hash, which
            # would sign this session out with every other: keep this one.
            update_session_auth_hash(request, form.user)
            request.session[AUTH_TIME_KEY] = int(time.time())
        _end(request, target)
        return HttpResponseRedirect(reverse("charon_sessions:list"))
    return _page(request, form)


def _end(request: HttpRequest, target: str) -> None:
    own = request.session.session_key
    if target == END_OTHERS:
        count = end_sessions(request.user, keep_session_key=own, reason=REASON_LOGOUT_EVERYWHERE)
        text = ngettext(
            "Signed out %(count)d other device.", "Signed out %(count)d other devices.", count
        )
        messages.success(request, text % {"count": count}, fail_silently=True)
        return
    if own and is_valid_member(target) and target == _current_id(request):
        text = _("Use “Sign out” to end this device's session.")
        messages.info(request, text, fail_silently=True)
        return
    # Read first: once ended, nothing is left to say which device it was.
    found = [s for s in list_sessions(request.user) if s.id == target]
    if end_session(request.user, target, reason=REASON_REVOKED):
        text = (
            _("Signed out %(device)s.") % {"device": describe_session(found[0])}
            if found
            else _("Signed out that device.")
        )
        messages.success(request, text, fail_silently=True)
    else:
        messages.info(request, _("That device was already signed out."), fail_silently=True)


def _current_id(request: HttpRequest) -> str | None:
    key = request.session.session_key
    return public_id(key) if key else None


def _sign_in_again_url() -> str:
    """Return LOGIN_URL with ``next`` back to this page, for a fresh sign-in."""
    login = urlsplit(resolve_url(settings.LOGIN_URL))
    query = QueryDict(login.query, mutable=True)
    query[REDIRECT_FIELD_NAME] = reverse("charon_sessions:list")
    return urlunsplit(login._replace(query=query.urlencode(safe="/")))


def _page(
    request: HttpRequest, form: ConfirmPasswordForm | None, *, sign_in_again: bool = False
) -> HttpResponse:
    sessions = list_sessions(request.user, current_session_key=request.session.session_key)
    context = {
        "sessions": sessions,
        "others": [s for s in sessions if not s.is_current],
        "show_location": any(s.location for s in sessions),
        "form": form,
        "sign_in_again": sign_in_again,
        "login_url": _sign_in_again_url() if sign_in_again else "",
        "end_others": END_OTHERS,
    }
    return render(request, TEMPLATE, context)
