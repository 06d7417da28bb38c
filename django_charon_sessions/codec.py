"""Signed, per-key storage of session data.

Each session key is stored as its own field of the session's Redis hash, so
two requests that change different keys can both save without a lock. A
field's value is a 16 byte HMAC-SHA256 tag followed by the value serialized
with ``SESSION_SERIALIZER``. The tag covers the session's member (so a value
copied from another session fails), the field name and the payload, under a
key derived from ``SECRET_KEY`` (or one of ``SECRET_KEY_FALLBACKS``) and the
``KEY_PREFIX``.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core import signing

if TYPE_CHECKING:
    from collections.abc import Sequence

MAC_LENGTH = 16
META_MARK = 0xFF  # first byte of our own fields; never valid UTF-8
FIELD_CREATED = b"\xffc"
FIELD_USER = b"\xffu"


class BadSignatureError(Exception):
    """A stored value failed verification."""


@lru_cache(maxsize=16)
def _mac_key(secret: str, prefix: str) -> bytes:
    material = b"django-charon-sessions.data\0" + prefix.encode() + b"\0" + secret.encode()
    return hashlib.sha256(material).digest()


def _mac(key: bytes, member: bytes, field: bytes, payload: bytes) -> bytes:
    return hmac.digest(key, member + b"\0" + field + b"\0" + payload, "sha256")[:MAC_LENGTH]


class Codec:
    """Sign, verify, serialize and deserialize the fields of one session."""

    def __init__(self, serializer: Any, prefix: str) -> None:
        self.serializer = serializer
        self.key = _mac_key(str(settings.SECRET_KEY), prefix)
        fallbacks = getattr(settings, "SECRET_KEY_FALLBACKS", [])
        self.fallback_keys = [_mac_key(str(s), prefix) for s in fallbacks]

    def dumps(self, value: Any) -> bytes:
        data = self.serializer.dumps(value)
        return data if isinstance(data, bytes) else str(data).encode()

    def seal(self, member: bytes, field: bytes, payload: bytes) -> bytes:
        return _mac(self.key, member, field, payload) + payload

    def unseal(self, member: bytes, field: bytes, value: bytes) -> bytes:
        mac, payload = value[:MAC_LENGTH], value[MAC_LENGTH:]
        if len(mac) == MAC_LENGTH:
            if hmac.compare_digest(mac, _mac(self.key, member, field, payload)):
                return payload
            for key in self.fallback_keys:
                if hmac.compare_digest(mac, _mac(key, member, field, payload)):
                    return payload
        raise BadSignatureError

    def decode_fields(
        self, member: bytes, reply: Sequence[bytes]
    ) -> tuple[dict[str, Any], dict[str, bytes]]:
        """Return the session dict and the payload of each key from HGETALL.

        Raise :class:`BadSignatureError` when any field fails verification or
        cannot be deserialized.
        """
        data: dict[str, Any] = {}
        payloads: dict[str, bytes] = {}
        loads = self.serializer.loads
        for i in range(0, len(reply), 2):
            field = reply[i]
            if field[:1] == b"\xff":
                continue
            payload = self.unseal(member, field, reply[i + 1])
            try:
                name = field.decode("utf-8")
                data[name] = loads(payload)
            except (ValueError, TypeError, signing.BadSignature) as exc:
                raise BadSignatureError from exc
            payloads[name] = payload
        return data, payloads
