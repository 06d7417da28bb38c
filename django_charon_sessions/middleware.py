"""Request facts for the session store, and the request's session.

Add ``"django_charon_sessions.middleware.SessionMetadataMiddleware"`` to
``MIDDLEWARE`` right after Django's ``SessionMiddleware``. It works with it
(it does not replace it): for each request it

- gives the session the client's IP and user agent (each can be turned off
  with ``CAPTURE_IP`` / ``CAPTURE_USER_AGENT``), and the IP's city and
  country when the location option is on (see :mod:`.locations`), stored
  with signed-in sessions and shown when a user's sessions are listed;
- makes the request's session known to code without the request
  (:func:`current_session`).

Account events do not need it: a password change keeps the session that
Django's own check keeps with or without it (see :mod:`.receivers`).
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from . import locations
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
    """Return the request facts to store with a session, as compact JSON.

    Built once per distinct client: the result is cached on everything it
    depends on (the address, every header the IP lookup may read, the user
    agent and the settings), since a session uses it at most once per
    ``LAST_SEEN_INTERVAL``.
    """
    s = charon_settings
    meta = request.META
    proxied = s.CAPTURE_IP and (bool(s.TRUSTED_PROXIES) or s.PROXY_COUNT is not None)
    return _facts(
        str(meta.get("REMOTE_ADDR") or ""),
        _forwarding_headers(meta) if proxied else (),
        str(meta.get("HTTP_USER_AGENT", "")) if s.CAPTURE_USER_AGENT else None,
        s.CAPTURE_IP,
        s.USER_AGENT_MAX_LENGTH,
        tuple(s.TRUSTED_PROXIES),
        s.PROXY_COUNT,
        # Part of the cache key, so a changed database is read from then on.
        str(locations.configured_path() or "") if locations.enabled() else "",
    )


def _fold(name: str) -> str:
    name = name.upper().replace("-", "_")
    return name[5:] if name.startswith("HTTP_") else name


@lru_cache(maxsize=1)
def _header_names() -> frozenset[str] | None:
    from python_ipware import IpWare

    ware: Any = IpWare()
    # python-ipware 3 keeps the list on the object; later releases on its engine.
    names = getattr(ware, "precedence", None) or getattr(ware.engine, "precedence", None)
    return frozenset(_fold(h) for h in names) if names else None


def _forwarding_headers(meta: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    # python-ipware matches header names loosely (case, "-" or "_"), so take
    # every entry that folds to one of the names it reads (all headers when
    # the list is unknown: correct, only cached less well).
    names = _header_names()
    return tuple(
        sorted(
            (k, str(v))
            for k, v in meta.items()
            if (_fold(k) in names if names is not None else k.startswith("HTTP_"))
        )
    )


@lru_cache(maxsize=1024)
def _facts(
    remote: str,
    headers: tuple[tuple[str, str], ...],
    agent: str | None,
    capture_ip: bool,
    agent_length: int,
    proxies: tuple[str, ...],
    proxy_count: int | None,
    geoip_path: str,
) -> str:
    facts: dict[str, str] = {}
    if capture_ip:
        facts["ip"] = client_ip({**dict(headers), "REMOTE_ADDR": remote})
        # Only the short "City, CC": the facts are kept with every session.
        location = locations.locate(facts["ip"]) if geoip_path else ""
        if location:
            facts["loc"] = location
    if agent is not None:
        facts["ua"] = agent[:agent_length]
    return json.dumps(facts, separators=(",", ":")) if facts else ""


class SessionMetadataMiddleware:
    """Give the session its request facts; make it known to :func:`current_session`."""

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
