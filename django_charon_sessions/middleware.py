"""Request facts for the session store, and the current session for account events.

Add ``"django_charon_sessions.middleware.SessionMetadataMiddleware"`` to
``MIDDLEWARE`` right after Django's ``SessionMiddleware``. It works with it
(it does not replace it): for each request it

- gives the session the client's IP and user agent (each can be turned off
  with ``CAPTURE_IP`` / ``CAPTURE_USER_AGENT``), stored with signed-in
  sessions and shown when a user's sessions are listed;
- makes the request's session known to the account-event handlers, so a
  password change ends the user's *other* sessions and keeps this one.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from .conf import charon_settings

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from django.http import HttpRequest, HttpResponseBase

_current_session: ContextVar[Any] = ContextVar("charon_current_session", default=None)


def current_session() -> Any:
    """Return the session of the request being handled, or None outside one."""
    return _current_session.get()


@lru_cache(maxsize=8)
def _ipware(proxy_count: int | None, proxies: tuple[str, ...]) -> Any:
    from python_ipware import IpWare

    return IpWare(proxy_count=proxy_count, proxy_list=list(proxies) or None)


def client_ip(meta: Mapping[str, Any]) -> str:
    """Return the client's IP address for a request's ``META``.

    Forwarding headers are believed only when ``TRUSTED_PROXIES`` or
    ``PROXY_COUNT`` says a proxy is in front; a client that sends its own
    ``X-Forwarded-For`` otherwise gets its connection's address.
    """
    remote = str(meta.get("REMOTE_ADDR") or "")
    s = charon_settings
    if not s.TRUSTED_PROXIES and s.PROXY_COUNT is None:
        return remote
    ip, trusted = _ipware(s.PROXY_COUNT, tuple(s.TRUSTED_PROXIES)).get_client_ip(meta)
    return str(ip) if ip is not None and trusted else remote


def client_facts(request: HttpRequest) -> str:
    """Return the request facts to store with a session, as compact JSON."""
    s = charon_settings
    facts: dict[str, str] = {}
    if s.CAPTURE_IP:
        facts["ip"] = client_ip(request.META)
    if s.CAPTURE_USER_AGENT:
        agent = str(request.META.get("HTTP_USER_AGENT", ""))
        facts["ua"] = agent[: s.USER_AGENT_MAX_LENGTH]
    return json.dumps(facts, separators=(",", ":")) if facts else ""


class SessionMetadataMiddleware:
    """Give the session its request facts; remember it for account events."""

    sync_capable = True
    async_capable = True

    def __init__(
        self,
        get_response: Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]],
    ) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def _prepare(self, request: HttpRequest) -> Any:
        session = getattr(request, "session", None)
        if session is not None and hasattr(session, "client_facts"):
            session.client_facts = client_facts(request)
        return _current_session.set(session)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        token = self._prepare(request)
        try:
            return self.get_response(request)
        finally:
            _current_session.reset(token)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        token = self._prepare(request)
        try:
            return await self.get_response(request)  # type: ignore[no-any-return,misc]
        finally:
            _current_session.reset(token)
