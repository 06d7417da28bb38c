"""Session keys (the cookie values) and the Redis key names derived from them.

A session key of this engine is 40 characters of ``[a-z0-9]``, the size and
alphabet of Django's own ``Session.session_key`` column: a 15 character
*tag* followed by 25 random characters (129 bits). The tag decides the Redis
hash slot: for a signed-in session it is a keyed hash of the user id (so all
of a user's sessions and the user's index share one slot, and the cookie does
not reveal the id); for an anonymous session it is random.

Django's own engines make 32 character keys; sessions brought over by
``sessions_import`` keep theirs ("legacy" keys). Any other string of 8 to 40
ASCII characters is a valid key that names no session, as with Django's
engines.

Redis never sees a session key. Keys and index members use a *member*: the
first 104 bits of SHA-256 of the session key, in hex (26 characters; never
starting with "-", so it can be passed on a command line).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.utils.crypto import get_random_string

from .conf import charon_settings

TAG_LENGTH = 15
RANDOM_LENGTH = 25
KEY_LENGTH = TAG_LENGTH + RANDOM_LENGTH
MEMBER_LENGTH = 26
#: Django's rule: any string of at least 8 characters may be a session key.
MIN_KEY_LENGTH = 8
#: The size of Django's ``Session.session_key`` column; longer values name nothing.
MAX_KEY_LENGTH = 40

_TAG_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_RANDOM_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
_KEY_RE = re.compile(rf"[a-z2-7]{{{TAG_LENGTH}}}[a-z0-9]{{{RANDOM_LENGTH}}}\Z")
# The session keys of Django's own engines: 32 characters of [a-z0-9].
_LEGACY_RE = re.compile(r"[a-z0-9]{32}\Z")


def is_valid_session_key(value: object) -> bool:
    """Return whether ``value`` may be a session key (perhaps of no session).

    As with Django's engines, any string of 8 or more characters qualifies,
    up to the 40 characters of Django's column, in ASCII.
    """
    return (
        isinstance(value, str)
        and MIN_KEY_LENGTH <= len(value) <= MAX_KEY_LENGTH
        and value.isascii()
    )


def is_engine_key(value: object) -> bool:
    """Return whether ``value`` has the shape of a key this engine issues."""
    return isinstance(value, str) and len(value) == KEY_LENGTH and _KEY_RE.match(value) is not None


def is_legacy_key(value: object) -> bool:
    """Return whether ``value`` has the shape of a key made by Django's engines.

    Such keys name sessions brought over by ``sessions_import``; the engine
    loads them and moves them to a key of its own on ``cycle_key()``.
    """
    return isinstance(value, str) and len(value) == 32 and _LEGACY_RE.match(value) is not None


def key_prefix() -> str:
    """Return the prefix of every key: ``KEY_PREFIX`` (with a parallel test worker's suffix).

    Every key name below takes this prefix; read it here, nowhere else.
    """
    return charon_settings.KEY_PREFIX


def _b32(digest: bytes) -> str:
    return base64.b32encode(digest).decode("ascii").lower()[:TAG_LENGTH]


def legacy_tag(session_key: str) -> str:
    """Return the tag of an imported key's alias (and of its anonymous session)."""
    return _b32(
        hashlib.sha256(b"django-charon-sessions.legacy.v2\0" + session_key.encode()).digest()
    )


def alias_key(prefix: str, session_key: str) -> str:
    """Return the key holding the user tag of an imported, signed-in session."""
    return f"{prefix}:{{{legacy_tag(session_key)}}}:a:{member_of(session_key)}"


def tag_of(session_key: str) -> str:
    return session_key[:TAG_LENGTH]


def random_tag() -> str:
    return "".join(secrets.choice(_TAG_ALPHABET) for _ in range(TAG_LENGTH))


def new_session_key(tag: str) -> str:
    return tag + get_random_string(RANDOM_LENGTH, _RANDOM_ALPHABET)


def member_of(session_key: str) -> str:
    """Return the public, non-secret name of a session: a hash of its key."""
    # Hex (a C routine) rather than base32 (pure Python, 5 us): this runs on
    # every load and save. 104 bits keep members unique within a tag with
    # a wide margin and reveal nothing usable of the key.
    return hashlib.sha256(session_key.encode("ascii")).hexdigest()[:MEMBER_LENGTH]


@lru_cache(maxsize=64)
def _tag_for_secret(secret: str, user_id: str) -> str:
    key = hashlib.sha256(b"django-charon-sessions.user-tag.v2\0" + secret.encode()).digest()
    return _b32(hmac.digest(key, user_id.encode("utf-8"), "sha256"))


def _tag_secrets() -> list[str]:
    # TAG_SECRET does not rotate with SECRET_KEY, so a rotation never moves a
    # user's sessions to another slot. Without it, tags follow SECRET_KEY and
    # the tags of its fallbacks stay valid while those are configured.
    fixed = charon_settings.TAG_SECRET
    if fixed:
        return [fixed]
    secrets_ = [str(settings.SECRET_KEY)]
    return secrets_ + [str(s) for s in getattr(settings, "SECRET_KEY_FALLBACKS", [])]


def user_tag(user_id: str) -> str:
    """Return the tag that new sessions of ``user_id`` get."""
    return _tag_for_secret(_tag_secrets()[0], user_id)


def user_tags(user_id: str) -> list[str]:
    """Return every tag a live session of ``user_id`` may have.

    With ``TAG_SECRET`` set that is one tag. Without it, sessions created
    before a ``SECRET_KEY`` rotation keep the tag of the key that was current
    then, as long as it is in ``SECRET_KEY_FALLBACKS``.
    """
    tags: list[str] = []
    for secret in _tag_secrets():
        tag = _tag_for_secret(secret, user_id)
        if tag not in tags:
            tags.append(tag)
    return tags


_MEMBER_RE = re.compile(rf"[0-9a-f]{{{MEMBER_LENGTH}}}\Z")


def is_valid_member(value: object) -> bool:
    """Return whether ``value`` has the shape of a member (a public session id)."""
    return isinstance(value, str) and _MEMBER_RE.match(value) is not None


@dataclass(slots=True)
class Keys:
    """The Redis keys one session touches: all in the slot of its tag."""

    # Not frozen: built on every load and save, where a frozen dataclass's
    # __init__ costs several microseconds.
    record: str
    index: str
    meta: str
    ended: str
    member: str

    @classmethod
    def for_member(cls, prefix: str, tag: str, member: str) -> Keys:
        slot = prefix + ":{" + tag + "}"
        return cls(
            slot + "r" + _record_suffix(member), slot + ":i", slot + ":m", slot + ":x", member
        )

    @classmethod
    def for_session(cls, prefix: str, session_key: str) -> Keys:
        return cls.for_member(prefix, session_key[:TAG_LENGTH], member_of(session_key))


@dataclass(frozen=True)
class UserKeys:
    """The per-user keys of one tag: index, metadata and ended set."""

    tag: str
    index: str
    meta: str
    ended: str

    @classmethod
    def for_tag(cls, prefix: str, tag: str) -> UserKeys:
        base = f"{prefix}:{{{tag}}}:"
        return cls(tag, base + "i", base + "m", base + "x")

    @classmethod
    def for_index(cls, index: str | bytes) -> UserKeys:
        """Return the keys of the user whose index (or ended set) key SCAN found."""
        name = index.decode() if isinstance(index, bytes) else index
        base = name[:-1]  # "P:{T}:" of "P:{T}:i"
        return cls(tag_of_slot_key(name), base + "i", base + "m", base + "x")

    def record(self, member: str) -> str:
        """Return the key of the session record ``member`` of this tag."""
        return self.index[:-2] + "r" + _record_suffix(member)


def _record_suffix(member: str) -> str:
    # The member's 13 bytes in base64url (18 characters) rather than hex (26):
    # with the default prefix a record's key then fits a 48-byte allocation
    # in Redis instead of 64, one per session.
    return base64.urlsafe_b64encode(bytes.fromhex(member)).rstrip(b"=").decode("ascii")


def member_of_record(key: str | bytes) -> str:
    """Return the member (public id) named by a record key ``P:{T}r<member>``."""
    name = key.decode() if isinstance(key, bytes) else key
    suffix = name[name.rindex("}") + 2 :]
    return base64.urlsafe_b64decode(suffix + "==").hex()


def ledger_key(prefix: str, tag: str) -> str:
    """Return the import ledger of slot ``tag``: the members ``sessions_import`` wrote there."""
    return f"{prefix}:{{{tag}}}:l"


def ledger_pattern(prefix: str) -> str:
    """Return the SCAN pattern of every slot's import ledger."""
    return _slot_kind_pattern(prefix, "l")


def tag_of_slot_key(key: str | bytes) -> str:
    """Return the tag ``T`` of a key named ``P:{T}...``."""
    name = key.decode() if isinstance(key, bytes) else key
    return name[name.index("{") + 1 : name.index("}")]


def retag(key: str, tag: str) -> str:
    """Return the name ``key`` (``P:{T}...``) would have in the slot of ``tag``."""
    return key.replace("{" + tag_of_slot_key(key) + "}", "{" + tag + "}", 1)


def import_state_key(prefix: str, name: str) -> str:
    """Return a key of the importer's own state (its checkpoint, its source)."""
    return f"{prefix}:import:{name}"


def record_pattern(prefix: str) -> str:
    """Return the SCAN pattern of every session record."""
    return f"{prefix}:{{*}}r*"


def index_pattern(prefix: str) -> str:
    """Return the SCAN pattern of every user's index."""
    return _slot_kind_pattern(prefix, "i")


def ended_pattern(prefix: str) -> str:
    """Return the SCAN pattern of every user's set of ended sessions."""
    return _slot_kind_pattern(prefix, "x")


def _slot_kind_pattern(prefix: str, kind: str) -> str:
    return f"{prefix}:{{*}}:{kind}"


def slot_keys_pattern(prefix: str) -> str:
    """Return the SCAN pattern of every key in a tag's slot (all but the importer's state).

    The brace keeps ``P`` from matching a longer prefix, such as a parallel
    test worker's ``P:gw1``.
    """
    return f"{prefix}:{{*"


def acl_key_pattern(prefix: str) -> str:
    """Return the ACL key pattern that covers every key of ``prefix``."""
    return f"{prefix}:*"


# -- site-wide activity ----------------------------------------------------------
#
# Who was active lately is kept in one pair of sorted sets per Cluster hash
# slot: ``P:{S}:s`` (sessions: member ``T + M + user id``, score last seen in
# unix ms) and ``P:{S}:u`` (users: member the user id, same score). ``S`` is a
# *slot tag*: a short string (``[@A-O]``, never a user tag's alphabet) whose
# slot is the slot of every user tag ``T`` it serves, so the "last seen"
# update writes them in the same function call as the session's own keys.

#: Redis Cluster's hash slots.
SLOTS = 16384
#: How long the session activity sets keep an entry: the longest window the
#: admin's search by IP or browser offers.
ACTIVITY_WINDOW_MS = 7 * 24 * 3600 * 1000
#: How long the user activity sets keep an entry: the longest "who is online" window.
USERS_WINDOW_MS = 24 * 3600 * 1000

_SLOT_BASE = b"@@@@"


@lru_cache(maxsize=1)
def _slot_basis() -> dict[int, tuple[int, int]]:
    # CRC16 (XMODEM, what Cluster uses) is linear over GF(2) for messages of
    # one length: crc(a ^ b) == crc(a) ^ crc(b). Flipping the low four bits of
    # each of four bytes spans all 14 slot bits, so every slot's tag is solved
    # for directly (no search): pivot bit -> (slot bits, flipped bits).
    basis: dict[int, tuple[int, int]] = {}
    for bit in range(4 * len(_SLOT_BASE)):
        flip = bytearray(len(_SLOT_BASE))
        flip[bit // 4] = 1 << (bit % 4)
        value, combo = binascii.crc_hqx(bytes(flip), 0) & (SLOTS - 1), 1 << bit
        for pivot in sorted(basis, reverse=True):
            if value >> pivot & 1:
                value, combo = value ^ basis[pivot][0], combo ^ basis[pivot][1]
        if value:
            basis[value.bit_length() - 1] = (value, combo)
    return basis


def slot_of(tag: str) -> int:
    """Return the Redis Cluster hash slot of the keys of ``tag`` (``P:{T}...``)."""
    return binascii.crc_hqx(tag.encode(), 0) & (SLOTS - 1)


@lru_cache(maxsize=SLOTS)
def slot_tag(slot: int) -> str:
    """Return the slot tag ``S`` whose keys ``P:{S}...`` live in hash slot ``slot``."""
    target = slot ^ (binascii.crc_hqx(_SLOT_BASE, 0) & (SLOTS - 1))
    combo = 0
    for pivot, (value, flips) in sorted(_slot_basis().items(), reverse=True):
        if target >> pivot & 1:
            target, combo = target ^ value, combo ^ flips
    raw = bytes(b ^ (combo >> (4 * n) & 15) for n, b in enumerate(_SLOT_BASE))
    return raw.decode("ascii")


@lru_cache(maxsize=4096)
def activity_keys(index: str) -> tuple[str, str]:
    """Return the session and user activity sets in the slot of a user's index ``P:{T}:i``."""
    prefix, tag = index[: index.index(":{")], tag_of_slot_key(index)
    base = f"{prefix}:{{{slot_tag(slot_of(tag))}}}:"
    return base + "s", base + "u"


@lru_cache(maxsize=1)
def all_activity_keys(prefix: str) -> tuple[tuple[str, str], ...]:
    """Return the session and user activity sets of every slot.

    Cached (one prefix: a site's): a site-wide page view reads them twice, for the
    listing and the counters, and building them takes milliseconds.
    """
    return tuple(
        (f"{prefix}:{{{s}}}:s", f"{prefix}:{{{s}}}:u") for s in map(slot_tag, range(SLOTS))
    )


def activity_entry(tag: str, member: str, user_id: str) -> str:
    """Return the member of a session in the session activity sets."""
    return tag + member + user_id


def parse_activity_entry(entry: str) -> tuple[str, str, str]:
    """Return the tag, member and user id of a session activity entry."""
    return (
        entry[:TAG_LENGTH],
        entry[TAG_LENGTH : TAG_LENGTH + MEMBER_LENGTH],
        entry[TAG_LENGTH + MEMBER_LENGTH :],
    )


def activity_pattern(prefix: str) -> str:
    """Return the SCAN pattern of every slot's session activity set."""
    return _slot_kind_pattern(prefix, "s")
