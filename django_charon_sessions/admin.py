"""Admin pages for a user's sessions: list them, revoke one, log out everywhere.

Put the mixin first in the bases of the user admin, on any admin site::

    @admin.register(User)
    class MyUserAdmin(SessionsAdminMixin, UserAdmin): ...

Without it, the admin registered for ``AUTH_USER_MODEL`` on the default admin
site is adopted at start-up (:func:`adopt_user_admin`, while
``CHARON_SESSIONS["ADMIN"]`` is on, the default).

Viewing a user's sessions needs the view or change permission for that user;
ending them needs the change permission. Override
:meth:`SessionsAdminMixin.has_end_sessions_permission` to ask for something
else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import django
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import quote, unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.loader import get_template, select_template
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from .api import UserSession, end_session, end_sessions, list_sessions, public_id
from .keyspace import is_valid_member
from .wording import ended_everywhere, revoked_message

if TYPE_CHECKING:
    from django.db.models import Model, QuerySet
    from django.http import HttpRequest, HttpResponse
    from django.urls import URLPattern

if TYPE_CHECKING:
    _Base = admin.ModelAdmin[Any]
else:
    _Base = object  # a mixin: the real ModelAdmin comes after it in the bases


def page_context(model_admin: Any, request: HttpRequest, title: str) -> dict[str, Any]:
    """Return what each of this app's admin pages needs, as Django's own admin pages have it."""
    opts = model_admin.opts
    return {
        **model_admin.admin_site.each_context(request),
        # Django 6.1's admin marks breadcrumbs up as a list; earlier, a div.
        "charon_list_breadcrumbs": django.VERSION >= (6, 1),
        "opts": opts,
        "app_label": opts.app_label,
        "title": title,
    }


class SessionsAdminMixin(_Base):
    """Add a "Sessions" page, revoke and "log out everywhere" to a user admin."""

    sessions_template = "admin/django_charon_sessions/sessions.html"
    sessions_confirm_template = "admin/django_charon_sessions/confirm.html"
    sessions_action_template = "admin/django_charon_sessions/confirm_action.html"
    sessions_change_form_template = "admin/django_charon_sessions/change_form.html"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # An instance attribute: the class's list may be shared with others.
        if self.actions is not None and "end_sessions_of_selected" not in self.actions:
            self.actions = [*self.actions, "end_sessions_of_selected"]

    # Permissions

    def has_view_sessions_permission(self, request: HttpRequest, obj: Model) -> bool:
        """Return whether ``request.user`` may see the sessions of ``obj``."""
        return bool(self.has_view_or_change_permission(request, obj))

    def has_end_sessions_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        """Return whether ``request.user`` may end the sessions of ``obj`` (any user if None)."""
        return bool(self.has_change_permission(request, obj))

    # URLs

    def get_urls(self) -> list[URLPattern]:
        info = self.opts.app_label, self.opts.model_name
        view = self.admin_site.admin_view
        ours = [
            path(
                "<path:object_id>/sessions/",
                view(self.sessions_view),
                name="{}_{}_sessions".format(*info),
            ),
            path(
                "<path:object_id>/sessions/end/",
                view(self.end_sessions_view),
                name="{}_{}_sessions_end".format(*info),
            ),
        ]
        # First: ModelAdmin's "<path:object_id>/" would swallow these.
        return ours + super().get_urls()

    def sessions_url(self, obj: Model) -> str:
        """Return the URL of the sessions page of ``obj``."""
        info = self.admin_site.name, self.opts.app_label, self.opts.model_name
        # quote(), as the admin's own URLs: a string key may hold "/" or "_".
        return reverse("{}:{}_{}_sessions".format(*info), args=[quote(obj.pk)])

    # Views

    def _get_user(self, request: HttpRequest, object_id: str) -> Model:
        obj: Model | None = self.get_object(request, unquote(object_id))
        if obj is None:
            raise Http404(_("No such user."))
        return obj

    def _context(self, request: HttpRequest, obj: Model | None, title: str) -> dict[str, Any]:
        return {
            **page_context(self, request, title),
            "original": obj,
            # None: the changelist action's page is about several users.
            "subtitle": str(obj) if obj is not None else None,
            "has_view_permission": self.has_view_permission(request, obj),
            "has_change_permission": self.has_change_permission(request, obj),
            "can_end_sessions": self.has_end_sessions_permission(request, obj),
            "sessions_url": self.sessions_url(obj) if obj is not None else "",
            "end_url": self.sessions_url(obj) + "end/" if obj is not None else "",
        }

    def sessions_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Show the live sessions of one user."""
        obj = self._get_user(request, object_id)
        if not self.has_view_sessions_permission(request, obj):
            raise PermissionDenied
        current = request.session.session_key if hasattr(request, "session") else None
        context = self._context(request, obj, _("Sessions"))
        context["sessions"] = list_sessions(obj, current_session_key=current)
        context["show_location"] = any(s.location for s in context["sessions"])
        context["is_self"] = obj.pk == request.user.pk
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.sessions_template, context)

    def end_sessions_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """Confirm (GET) and end (POST) one session, or all of a user's sessions."""
        obj = self._get_user(request, object_id)
        if not self.has_end_sessions_permission(request, obj):
            raise PermissionDenied
        data = request.POST if request.method == "POST" else request.GET
        session_id = data.get("session", "")
        if session_id and not is_valid_member(session_id):
            raise Http404(_("No such session."))
        current = request.session.session_key if hasattr(request, "session") else None
        if session_id and current and session_id == public_id(current):
            self.message_user(
                request, _("This is your current session: use “Log out”."), messages.WARNING
            )
            return HttpResponseRedirect(self.sessions_url(obj))
        if request.method == "POST":
            return self._end(request, obj, session_id)
        sessions = list_sessions(obj, current_session_key=current)
        keeps_current = not session_id and self._keep_for(request, obj) is not None
        if session_id:
            sessions = [s for s in sessions if s.id == session_id]
        elif keeps_current:
            # Count what will end: the session in use here is kept.
            sessions = [s for s in sessions if not s.is_current]
        title = _("Revoke session") if session_id else _("Log out everywhere")
        context = self._context(request, obj, title)
        context |= {"session_id": session_id, "sessions": sessions, "keeps_current": keeps_current}
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.sessions_confirm_template, context)

    def _keep_for(self, request: HttpRequest, obj: Model) -> str | None:
        # An admin logging themselves out everywhere stays signed in here.
        if obj.pk == request.user.pk and hasattr(request, "session"):
            return request.session.session_key
        return None

    def _end(self, request: HttpRequest, obj: Model, session_id: str) -> HttpResponse:
        if session_id:
            # Read first: once ended, nothing is left to say which device it was.
            target = _find(list_sessions(obj), session_id)
            count = int(end_session(obj, session_id))
            what = revoked_message(target)
        else:
            count = end_sessions(obj, keep_session_key=self._keep_for(request, obj))
            what = ended_everywhere(count)
        if count or not session_id:
            self.log_change(request, obj, what)
        if session_id and not count:
            self.message_user(request, _("That session had already ended."), messages.WARNING)
        else:
            self.message_user(request, what, messages.SUCCESS)
        return HttpResponseRedirect(self.sessions_url(obj))

    # The changelist action

    @admin.action(
        permissions=["end_sessions"],
        description=gettext_lazy("Log out selected %(verbose_name_plural)s everywhere"),
    )
    def end_sessions_of_selected(
        self, request: HttpRequest, queryset: QuerySet[Any]
    ) -> HttpResponse | None:
        """End every session of the selected users, after a confirmation page.

        Users for whom :meth:`has_end_sessions_permission` says no are left
        alone, and the message says how many.
        """
        allowed = [u for u in queryset if self.has_end_sessions_permission(request, u)]
        skipped = len(queryset) - len(allowed)
        if request.POST.get("post") != "yes":
            context = self._context(request, None, _("Log out everywhere"))
            context |= {
                "users": [(user, self._to_end(request, user)) for user in allowed],
                "own_pk": request.user.pk,
                "includes_self": any(self._keep_for(request, user) for user in allowed),
                "skipped": skipped,
                "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
                "action_name": "end_sessions_of_selected",
            }
            request.current_app = self.admin_site.name
            return TemplateResponse(request, self.sessions_action_template, context)
        sessions = 0
        for user in allowed:
            count = end_sessions(user, keep_session_key=self._keep_for(request, user))
            self.log_change(request, user, ended_everywhere(count))
            sessions += count
        self.message_user(request, _summary(sessions, len(allowed), skipped), messages.SUCCESS)
        return None

    def _to_end(self, request: HttpRequest, user: Model) -> int:
        # As many as end_sessions() will end: the admin's own session here is kept.
        keep = self._keep_for(request, user)
        return sum(not s.is_current for s in list_sessions(user, current_session_key=keep))

    # The link on the change form

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Model | None = None,
    ) -> HttpResponse:
        response = super().render_change_form(request, context, add, change, form_url, obj)
        if add or obj is None or not isinstance(response, TemplateResponse):
            return response
        if not self.has_view_sessions_permission(request, obj):
            return response
        # Extend whatever template this admin would use, adding one link.
        names = response.template_name
        if isinstance(names, str):
            parent = get_template(names)
        elif isinstance(names, (list, tuple)):
            parent = select_template(names)
        else:
            return response  # already a Template: nothing to extend by name
        response.template_name = self.sessions_change_form_template
        assert response.context_data is not None
        response.context_data["charon_parent_template"] = parent
        response.context_data["charon_sessions_url"] = self.sessions_url(obj)
        return response


def _find(sessions: list[UserSession], session_id: str) -> UserSession | None:
    return next((s for s in sessions if s.id == session_id), None)


def _summary(sessions: int, users: int, skipped: int) -> str:
    # Two numbers, two plural forms: one ngettext for each.
    text = ngettext(
        "Ended %(sessions)s of %(count)d selected user.",
        "Ended %(sessions)s of %(count)d selected users.",
        users,
    ) % {
        "sessions": ngettext("%(n)d session", "%(n)d sessions", sessions) % {"n": sessions},
        "count": users,
    }
    if skipped:
        text += " " + ngettext(
            "Skipped %(count)d user you may not log out.",
            "Skipped %(count)d users you may not log out.",
            skipped,
        ) % {"count": skipped}
    return text


def adopt_user_admin(site: admin.AdminSite | None = None) -> bool:
    """Give the user model's registered admin the sessions pages.

    Re-register it with a subclass that puts :class:`SessionsAdminMixin`
    first, keeping everything else about it. Return whether the admin has the
    pages now (False when the user model is not registered on ``site``).
    """
    from django.contrib.auth import get_user_model

    site = site or admin.site
    model = get_user_model()
    current = site._registry.get(model)
    if current is None:
        return False
    if isinstance(current, SessionsAdminMixin):
        return True
    cls = type(current)
    adopted = type(cls.__name__, (SessionsAdminMixin, cls), {"__module__": cls.__module__})
    site.unregister(model)
    site.register(model, adopted)
    return True
