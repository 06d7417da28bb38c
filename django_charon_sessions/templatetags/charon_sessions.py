"""Template filters for the sessions pages: times said the way people say them."""

from __future__ import annotations

from datetime import datetime, timezone

from django import template
from django.utils.timesince import timesince, timeuntil
from django.utils.translation import gettext as _

from ..wording import exact_time

register = template.Library()


@register.filter
def ago(value: datetime) -> str:
    """Render a past moment as "just now" or "3 hours ago"."""
    if (datetime.now(timezone.utc) - value).total_seconds() < 60:
        return _("just now")
    return _("%(delta)s ago") % {"delta": timesince(value)}


@register.filter
def from_now(value: datetime) -> str:
    """Render a future moment as "in 2 weeks" (or "now" once it has passed)."""
    if (value - datetime.now(timezone.utc)).total_seconds() < 60:
        return _("now")
    return _("in %(delta)s") % {"delta": timeuntil(value)}


@register.filter
def exact(value: datetime) -> str:
    """Render a moment in the locale's format, naming the time zone."""
    return exact_time(value)
