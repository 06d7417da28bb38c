"""The session record: one Redis string per session, sealed with one MAC.

A record is a short text header that the Redis functions read and update
without any secret, followed by a sealed body::

    SSSSSSSSSS,V,C,N:U<mac><body>

``S`` is "last seen" (unix seconds, always 10 digits, so a load rewrites it
in place), ``V`` the version (a counter each replacing write increments),
``C`` the creation time (unix seconds), ``U`` the user id (``N`` bytes long,
empty for an anonymous session). ``<body>`` is the session's whole dict
serialized once with ``SESSION_SERIALIZER``; ``<mac>`` is the first 16 bytes
of HMAC-SHA256 over the member (the session's hash), the user id, the
creation time and the body, under a key derived from ``SECRET_KEY`` (or one
of ``SECRET_KEY_FALLBACKS``) and ``KEY_PREFIX``. So the functions can check
liveness and the absolute lifetime, and Python verifies that the header they
acted on is the one that was sealed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.contrib.auth import SESSION_KEY as AUTH_USER_KEY
from django.core import signing
from django.utils.module_loading import import_string

from .keyspace import key_prefix

MAC_LENGTH = 16

_HEADER_RE = re.compile(rb"(\d{10}),(\d+),(\d+),(\d+):")
# django.contrib.sessions.serializers.JSONSerializer is this same class.
_JSON_SERIALIZERS = (signing.JSONSerializer,)
_JSON_ENCODER = json.JSONEncoder(separators=(",", ":"))


class BadRecordError(Exception):
    """A stored record failed verification or could not be decoded."""


@dataclass(slots=True)
class Record:
    """A verified record, as loaded: the immutable bytes of its body.

    Treat it as read-only (it is not frozen only because a frozen dataclass
    costs microseconds to build, on every load and save).
    """

    version: int
    user: str | None
    created: int
    last_seen: int
    body: bytes
    #: Sealed under a ``SECRET_KEY_FALLBACKS`` key: the next save re-seals it.
    stale_key: bool


@lru_cache(maxsize=16)
def _mac_key(secret: str, prefix: str) -> bytes:
    material = b"django-charon-sessions.record\0" + prefix.encode() + b"\0" + secret.encode()
    return hashlib.sha256(material).digest()


def _mac(key: bytes, member: bytes, user: bytes, created: int, body: bytes) -> bytes:
    message = b"%s\0%s\0%d\0%s" % (member, user, created, body)
    return hmac.digest(key, message, "sha256")[:MAC_LENGTH]


def _mac_from(state: Any, member: bytes, user: bytes, created: int, body: bytes) -> bytes:
    # The same MAC from a copy of a keyed HMAC state: the key's pads are
    # hashed once per process instead of once per record.
    h = state.copy()
    h.update(b"%s\0%s\0%d\0%s" % (member, user, created, body))
    return h.digest()[:MAC_LENGTH]  # type: ignore[no-any-return]


def user_of(data: dict[str, Any]) -> str | None:
    """Return the user id a record of session ``data`` is bound to; None for anonymous."""
    uid = data.get(AUTH_USER_KEY)
    # An empty id names no user (Django finds none): the session is anonymous.
    return None if uid is None or uid == "" else str(uid)


class Codec:
    """Serialize, seal, verify and parse the records of one configuration."""

    @classmethod
    def from_settings(cls) -> Codec:
        """Return the codec of the current ``SESSION_SERIALIZER``, secrets and key prefix."""
        return cls(import_string(settings.SESSION_SERIALIZER)(), key_prefix())

    def __init__(self, serializer: Any, prefix: str) -> None:
        self.serializer = serializer
        self.prefix = prefix
        self.json = type(serializer) in _JSON_SERIALIZERS
        self.key = _mac_key(str(settings.SECRET_KEY), prefix)
        self._state = hmac.new(self.key, digestmod=hashlib.sha256)
        fallbacks = getattr(settings, "SECRET_KEY_FALLBACKS", [])
        self.fallback_keys = [_mac_key(str(s), prefix) for s in fallbacks]

    # -- values -----------------------------------------------------------

    def dumps(self, value: Any) -> bytes:
        """Serialize ``value`` (the session dict, or one of its values)."""
        if self.json:
            # The same bytes as Django's JSONSerializer.dumps(), without
            # building a new encoder for every call.
            return _JSON_ENCODER.encode(value).encode("latin-1")  # ASCII: ensure_ascii
        data = self.serializer.dumps(value)
        return data if isinstance(data, bytes) else str(data).encode()

    def loads(self, body: bytes) -> dict[str, Any]:
        """Deserialize a body; raise :class:`BadRecordError` unless it is a dict."""
        try:
            # json.loads of a str skips the encoding sniffing a bytes argument costs.
            value = json.loads(body.decode()) if self.json else self.serializer.loads(body)
        except (ValueError, TypeError, signing.BadSignature) as exc:  # UnicodeError too
            raise BadRecordError from exc
        if not isinstance(value, dict):
            raise BadRecordError
        return value

    # -- records ----------------------------------------------------------

    def seal(self, member: str, user: str | None, created: int, body: bytes) -> bytes:
        """Return the sealed part of a record: MAC and body."""
        uid = (user or "").encode()
        return _mac_from(self._state, member.encode(), uid, created, body) + body

    def record(
        self, member: str, user: str | None, created: int, body: bytes, version: int, seen: int
    ) -> bytes:
        """Return a whole record (header and sealed body) for the functions to store."""
        uid = (user or "").encode()
        mac = _mac_from(self._state, member.encode(), uid, created, body)
        return b"%010d,%d,%d,%d:%s%s%s" % (seen, version, created, len(uid), uid, mac, body)

    def new_record(self, member: str, data: dict[str, Any]) -> tuple[str | None, int, bytes]:
        """Seal ``data`` as the first version of session ``member``, created now.

        Return its user id (see :func:`user_of`), creation time and the whole
        record, ready for the ``create`` or ``import`` function.
        """
        user, created = user_of(data), now()
        return user, created, self.record(member, user, created, self.dumps(data), 1, created)

    def open(self, member: str, value: bytes) -> Record:
        """Parse and verify a stored record; raise :class:`BadRecordError` if it fails."""
        head = _HEADER_RE.match(value)
        if head is None:
            raise BadRecordError
        seen, version, created, length = map(int, head.groups())
        start = head.end()
        uid = value[start : start + length]
        mac = value[start + length : start + length + MAC_LENGTH]
        body = value[start + length + MAC_LENGTH :]
        if len(uid) != length or len(mac) != MAC_LENGTH:
            raise BadRecordError
        member_b = member.encode()
        stale = False
        if not hmac.compare_digest(mac, _mac_from(self._state, member_b, uid, created, body)):
            if not any(
                hmac.compare_digest(mac, _mac(k, member_b, uid, created, body))
                for k in self.fallback_keys
            ):
                raise BadRecordError
            stale = True
        try:
            user = uid.decode("utf-8") if length else None
        except UnicodeDecodeError as exc:
            raise BadRecordError from exc
        return Record(version, user, created, seen, body, stale)


def now() -> int:
    """Return the current unix time in whole seconds (a record's creation time)."""
    return int(time.time())
