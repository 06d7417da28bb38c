"""User agents shown as browser and operating system."""

from __future__ import annotations

from functools import lru_cache

from django.utils.translation import gettext, gettext_noop

# Kept in English where it is computed (the result is cached across requests
# in every language); translated only when shown, by shown().
UNKNOWN = gettext_noop("Unknown")


def shown(name: str) -> str:
    """Return a browser or OS name as shown to people: "Unknown" in their language."""
    return gettext(UNKNOWN) if name == UNKNOWN else name


def _version(family: str, *parts: str | None) -> str:
    numbers = [p for p in parts if p]
    return " ".join([family, ".".join(numbers)]) if numbers else family


@lru_cache(maxsize=1024)
def describe_user_agent(user_agent: str) -> tuple[str, str]:
    """Return (browser, operating system) for a User-Agent header.

    Uses ``ua-parser`` (``pip install django-charon-sessions[metadata]``);
    without it, or for an empty header, both are "Unknown".
    """
    if not user_agent:
        return UNKNOWN, UNKNOWN
    try:
        from ua_parser import parse
    except ImportError:
        return UNKNOWN, UNKNOWN
    result = parse(user_agent)
    browser = os = UNKNOWN
    if result.user_agent is not None:
        browser = _version(result.user_agent.family, result.user_agent.major)
    if result.os is not None:
        os = _version(result.os.family, result.os.major, result.os.minor)
    return browser, os
