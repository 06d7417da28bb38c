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
import json
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


# django.contrib.sessions.serializers.JSONSerializer is this same class.
_JSON_SERIALIZERS = (signing.JSONSerializer,)
_JSON_ENCODER = json.JSONEncoder(separators=(",", ":"))


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
        if type(self.serializer) in _JSON_SERIALIZERS:
            # The same bytes as Django's JSONSerializer.dumps(), without
            # building a new encoder for every value.
            return _JSON_ENCODER.encode(value).encode("latin-1")
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
        payloads: dict[str, bytes] = {}
        for i in range(0, len(reply), 2):
            field = reply[i]
            if field[:1] == b"\xff":
                continue
            payload = self.unseal(member, field, reply[i + 1])
            try:
                payloads[field.decode("utf-8")] = payload
            except UnicodeDecodeError as exc:
                raise BadSignatureError from exc
        values = self._loads_all(list(payloads.values()))
        return dict(zip(payloads, values, strict=True)), payloads

    def _loads_all(self, payloads: list[bytes]) -> list[Any]:
        # Django's JSON serializer: one json.loads of all values at once is
        # several times faster than one call per value.
        if type(self.serializer) in _JSON_SERIALIZERS and payloads:
            try:
                values = json.loads((b"[" + b",".join(payloads) + b"]").decode("latin-1"))
            except ValueError:
                values = None
            if isinstance(values, list) and len(values) == len(payloads):
                return values
        loads = self.serializer.loads
        try:
            return [loads(p) for p in payloads]
        except (ValueError, TypeError, signing.BadSignature) as exc:
            raise BadSignatureError from exc
