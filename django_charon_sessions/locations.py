"""Where a client is: city and country of an IP, from a MaxMind-format database.

An option: it is on when ``settings.GEOIP_PATH`` names a database (Django's
convention: a directory holding ``GeoLite2-City.mmdb`` or
``GeoLite2-Country.mmdb``, names that ``GEOIP_CITY`` and ``GEOIP_COUNTRY``
override, or the path of one ``.mmdb`` file), the ``geoip2`` package is
installed (``pip install "django-charon-sessions[geoip]"``) and
``CAPTURE_LOCATION`` and ``CAPTURE_IP`` are on. Otherwise :func:`locate`
returns "" and ``geoip2`` is never imported.

The middleware looks the location up once per distinct client, when it
builds the request facts; pages only read the stored short string.
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings

from .conf import charon_settings

logger = logging.getLogger("django_charon_sessions")

CITY_FILE = "GeoLite2-City.mmdb"
COUNTRY_FILE = "GeoLite2-Country.mmdb"


def configured_path() -> Path | None:
    """Return ``settings.GEOIP_PATH`` as a path, or None if it is not set."""
    path = getattr(settings, "GEOIP_PATH", None)
    return Path(path) if path else None


def database_path() -> Path | None:
    """Return the database file ``GEOIP_PATH`` names, None if there is none.

    In a directory the city database is preferred: it also knows the country.
    """
    path = configured_path()
    if path is None:
        return None
    if path.is_file():
        return path
    if path.is_dir():
        for name in (
            getattr(settings, "GEOIP_CITY", CITY_FILE),
            getattr(settings, "GEOIP_COUNTRY", COUNTRY_FILE),
        ):
            if (path / name).is_file():
                return path / name
    return None


def enabled() -> bool:
    """Return whether locations are looked up (settings only; no import, no file read)."""
    s = charon_settings
    return bool(s.CAPTURE_LOCATION and s.CAPTURE_IP and configured_path() is not None)


@lru_cache(maxsize=2)
def _reader(path: str) -> Any:
    """Open the database once per process (per path: tests change it)."""
    try:
        import geoip2.database
    except ImportError:
        return None
    try:
        return geoip2.database.Reader(path)
    except (OSError, ValueError) as exc:
        # A broken file must not break sign-ins; check W008 covers a missing one.
        logger.warning("Cannot open the GeoIP database %s: %s", path, exc)
        return None


def _short(city: str | None, country: str | None) -> str:
    return ", ".join(part for part in (city, country) if part)


def locate(ip: str) -> str:
    """Return "City, CC" (or "CC") for ``ip``, "" when unknown or the option is off."""
    if not ip or not enabled():
        return ""
    path = database_path()
    reader = _reader(str(path)) if path is not None else None
    if reader is None:
        return ""
    return _lookup(reader, ip)


def _lookup(reader: Any, ip: str) -> str:
    from geoip2.errors import AddressNotFoundError

    is_city = "City" in str(reader.metadata().database_type)
    try:
        found = reader.city(ip) if is_city else reader.country(ip)
    except (AddressNotFoundError, ValueError):
        return ""
    city = found.city.name if is_city else None
    return _short(city, found.country.iso_code)
