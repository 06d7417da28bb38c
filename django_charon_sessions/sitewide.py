"""The admin's site-wide "Sessions" page: all users' live sessions, search, revoke.

Registered on the default admin site with the user admin (while
``CHARON_SESSIONS["ADMIN"]`` is on). Seeing it needs the view or change
permission of the user model, acting on it the change permission: the same
permissions as the per-user pages, since the page shows and ends users'
sessions. Every action asks for a confirmation and is a CSRF-protected POST.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.contrib.admin.utils import quote
from django.contrib.auth import get_permission_codename, get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from . import activity
from .admin import page_context
from .api import end_session, end_sessions, list_sessions, public_id, user_id_of
from .conf import charon_settings
from .keyspace import is_valid_member
from .models import SiteSession
from .wording import ended_everywhere, revoked_message

if TYPE_CHECKING:
    from collections.abc import Iterable

    from django.db.models import Model
    from django.http import HttpRequest, HttpResponse
    from django.urls import URLPattern

    from .api import UserSession

    _Base = admin.ModelAdmin[SiteSession]
else:
    _Base = admin.ModelAdmin

#: The activity windows a search by IP or browser may look back.
WINDOWS = {
    "hour": (timedelta(hours=1), gettext_lazy("the last hour")),
    "day": (timedelta(days=1), gettext_lazy("the last day")),
    "week": (timedelta(days=7), gettext_lazy("the last week")),
}
SEARCH_FIELDS = ("user", "ip", "browser")


@dataclass(frozen=True)
class Row:
    """One row of the page: a session and its user (None if the user is gone)."""

    user: Model | None
    user_id: str
    session: UserSession
    sessions_url: str

    @property
    def pick(self) -> str:
        """Return the value of the row's checkbox: user id and public id."""
        return f"{self.session.id}:{self.user_id}"


class SiteSessionsAdmin(_Base):
    """The site-wide sessions page (the changelist of :class:`.models.SiteSession`)."""

    page_template = "admin/django_charon_sessions/sitewide.html"
    confirm_template = "admin/django_charon_sessions/sitewide_confirm.html"
    page_size = 50

    # Permissions: the user model's.

    def _user_perm(self, request: HttpRequest, action: str) -> bool:
        opts = get_user_model()._meta
        return bool(
            request.user.has_perm(f"{opts.app_label}.{get_permission_codename(action, opts)}")
        )

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._user_perm(request, "view") or self._user_perm(request, "change")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._user_perm(request, "change")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    # URLs: the page and its one action view; no change form, no history.

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        view = self.admin_site.admin_view
        return [
            path("", view(self.changelist_view), name="{}_{}_changelist".format(*info)),
            path("end/", view(self.end_view), name="{}_{}_end".format(*info)),
        ]

    def _page_url(self) -> str:
        return reverse(
            f"{self.admin_site.name}:{self.opts.app_label}_{self.opts.model_name}_changelist"
        )

    def _context(self, request: HttpRequest, title: str) -> dict[str, Any]:
        return {
            **page_context(self, request, title),
            "has_view_permission": True,
            "can_end_sessions": self.has_change_permission(request),
            "page_url": self._page_url(),
            "end_url": self._page_url() + "end/",
        }

    # Rows

    def _sessions_url(self, user: Model | None) -> str:
        if user is None:
            return ""
        opts = user._meta
        try:
            return reverse(
                f"{self.admin_site.name}:{opts.app_label}_{opts.model_name}_sessions",
                args=[quote(user.pk)],
            )
        except NoReverseMatch:
            return ""

    def _users(self, ids: set[str]) -> dict[str, Model]:
        model = get_user_model()
        pks = []
        for uid in ids:
            # An id another user model wrote is no user of this one.
            with contextlib.suppress(ValidationError):
                pks.append(model._meta.pk.to_python(uid))
        return {user_id_of(u): u for u in model._default_manager.filter(pk__in=pks)}

    def _rows(self, found: list[activity.SiteSession]) -> list[Row]:
        users = self._users({s.user_id for s in found})
        return [
            Row(
                users.get(s.user_id), s.user_id, s.session, self._sessions_url(users.get(s.user_id))
            )
            for s in found
        ]

    def _user_rows(self, query: str) -> list[Row]:
        model = get_user_model()
        match = Q(**{model.USERNAME_FIELD: query})
        email = model.get_email_field_name()
        if any(f.name == email for f in model._meta.get_fields()):
            match |= Q(**{f"{email}__iexact": query})
        rows = []
        for user in model._default_manager.filter(match)[:10]:
            url = self._sessions_url(user)
            rows += [Row(user, user_id_of(user), s, url) for s in list_sessions(user)]
        return rows

    # Views

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """Show the newest live sessions of all users, a search's, and who is online."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        query = request.GET.get("q", "").strip()
        tracked = charon_settings.SITE_ACTIVITY
        field = request.GET.get("by", "user")
        # Without the activity sets only a user's own index can be searched.
        field = field if field in SEARCH_FIELDS and tracked else "user"
        within = request.GET.get("within", "hour")
        within = within if within in WINDOWS else "hour"
        context = self._context(request, _("Sessions"))
        next_url, cut = "", False
        if query and field == "user":
            rows = self._user_rows(query)
        elif query:
            window = WINDOWS[within][0]
            found, cut = activity.search_sessions(_matcher(field, query), window)
            rows = self._rows(found)
        elif tracked:
            found, cursor = activity.recent_sessions(
                self.page_size, before_ms=_int(request.GET.get("before"))
            )
            rows = self._rows(found)
            if cursor is not None:
                next_url = f"?before={cursor}"
        else:
            rows = []
        current = request.session.session_key if hasattr(request, "session") else None
        context |= {
            "tracked": tracked,
            "rows": rows,
            "current_id": public_id(current) if current else "",
            "online": [(_span(o.window), o) for o in activity.online()] if tracked else [],
            "query": query,
            "field": field,
            "within": within,
            "windows": [(k, label) for k, (_w, label) in WINDOWS.items()],
            "window_label": WINDOWS[within][1],
            "search_limit": activity.SEARCH_LIMIT,
            "searched_window": bool(query) and field != "user",
            "cut": cut,
            "next_url": next_url,
            "paged": "before" in request.GET,
            "show_location": any(getattr(r.session, "location", None) for r in rows),
            "longest_window": WINDOWS["week"][1],
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.page_template, context)

    def end_view(self, request: HttpRequest) -> HttpResponse:
        """Confirm (first) and end (``post=yes``): sessions picked, or all of one user's."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        data = request.POST if request.method == "POST" else request.GET
        everywhere = data.get("everywhere", "")
        picks = _picks(data.getlist("pick"))
        current = request.session.session_key if hasattr(request, "session") else None
        mine = public_id(current) if current else ""
        if mine in {member for member, _uid in picks}:
            self.message_user(
                request, _("This is your current session: use “Log out”."), messages.WARNING
            )
            picks = [(m, uid) for m, uid in picks if m != mine]
        users = self._users({uid for _m, uid in picks} | ({everywhere} if everywhere else set()))
        if request.method == "POST" and data.get("post") == "yes":
            return self._end(request, picks, users.get(everywhere), users)
        context = self._context(
            request, _("Log out everywhere") if everywhere else _("Revoke sessions")
        )
        target = users.get(everywhere)
        context |= {
            "everywhere": everywhere if target is not None else "",
            "target": target,
            "target_sessions": list_sessions(target) if target is not None else [],
            "keeps_current": target is not None and target.pk == request.user.pk,
            "picked": [(m, uid, users.get(uid)) for m, uid in picks],
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.confirm_template, context)

    def _end(
        self,
        request: HttpRequest,
        picks: list[tuple[str, str]],
        target: Model | None,
        users: dict[str, Model],
    ) -> HttpResponse:
        if target is not None:
            keep = request.session.session_key if target.pk == request.user.pk else None
            count = end_sessions(target, keep_session_key=keep)
            self.log_change(request, target, ended_everywhere(count))  # type: ignore[arg-type]
            self.message_user(request, ended_everywhere(count), messages.SUCCESS)
            return HttpResponseRedirect(self._page_url())
        revoked = 0
        devices = _devices(users.get(uid) for _m, uid in picks)
        for member, uid in picks:
            user = users.get(uid)
            if end_session(user if user is not None else uid, member):
                revoked += 1
                if user is not None:
                    what = revoked_message(devices.get(member))
                    self.log_change(request, user, what)  # type: ignore[arg-type]
        text = ngettext("Revoked %(count)d session.", "Revoked %(count)d sessions.", revoked) % {
            "count": revoked
        }
        if revoked < len(picks):
            text += " " + _("The others had already ended.")
        self.message_user(request, text, messages.SUCCESS if revoked else messages.WARNING)
        return HttpResponseRedirect(self._page_url())


def _devices(users: Iterable[Model | None]) -> dict[str, UserSession]:
    """Return the live sessions of ``users`` by public id (one call per user), to name them."""
    out: dict[str, UserSession] = {}
    seen: set[Any] = set()
    for user in users:
        if user is not None and user.pk not in seen:
            seen.add(user.pk)
            out |= {s.id: s for s in list_sessions(user)}
    return out


def _span(window: timedelta) -> str:
    minutes = int(window.total_seconds()) // 60
    if minutes % 1440 == 0:
        days = minutes // 1440
        return ngettext("%(n)d day", "%(n)d days", days) % {"n": days}
    if minutes % 60 == 0:
        hours = minutes // 60
        return ngettext("%(n)d hour", "%(n)d hours", hours) % {"n": hours}
    return ngettext("%(n)d minute", "%(n)d minutes", minutes) % {"n": minutes}


def _matcher(field: str, query: str) -> Any:
    needle = query.lower()
    if field == "ip":
        return lambda s: s.ip == query
    return lambda s: needle in f"{s.browser} {s.os}".lower()


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value else None
    except ValueError:
        return None


def _picks(values: list[str]) -> list[tuple[str, str]]:
    """Return the (public id, user id) of each well-formed checkbox value."""
    out = []
    for value in values:
        member, _sep, uid = value.partition(":")
        if is_valid_member(member) and uid and (member, uid) not in out:
            out.append((member, uid))
    return out


def register(site: admin.AdminSite | None = None) -> None:
    """Register the site-wide page on ``site`` (the default admin site if None)."""
    site = site or admin.site
    if not site.is_registered(SiteSession):
        site.register(SiteSession, SiteSessionsAdmin)
