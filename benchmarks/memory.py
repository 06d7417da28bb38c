"""Redis memory per session: ``used_memory`` growth over many sessions, Redis defaults.

Each case starts from an empty server (``FLUSHALL``), creates ``count``
sessions through the engine's ``SessionStore.save()`` and reads how much
``used_memory`` grew once the server has settled; per session, in bytes.
This counts everything the sessions cost Redis: values, key names, the
keyspace's dictionaries (an entry per key and per expiry, and bucket arrays
that double in size as keys are added, so the figure moves with ``count``;
their share, from ``MEMORY STATS``, is reported beside it), and for this
engine each user's index entry and metadata. The server runs with its
default configuration.

Cases, for this engine and for Django's cache engine on django-redis:

- ``anonymous``: :data:`benchmarks.measure.DATA` only;
- ``signed_in``: the same plus Django's three auth keys; every session is
  another user's, so each has an index and metadata of its own;
- ``signed_in_facts`` (this engine only): the same, created with the request
  facts the metadata middleware stores (an IP and a 120 character user agent);
- ``signed_in_activity`` (this engine only): ``signed_in`` with
  ``SITE_ACTIVITY`` on, so each sign-in also enters its slot's activity sets.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.test import RequestFactory, override_settings

from benchmarks.engines import ENGINES
from benchmarks.measure import BACKEND, DATA, engine_settings, store_class

if TYPE_CHECKING:
    from collections.abc import Iterator

    import redis

#: A browser's user agent, 120 characters long.
USER_AGENT_120 = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.112"
)
IP = "203.0.113.7"
CASES = (
    ("charon", "anonymous"),
    ("charon", "signed_in"),
    ("charon", "signed_in_facts"),
    ("charon", "signed_in_activity"),
    ("cache_django_redis", "anonymous"),
    ("cache_django_redis", "signed_in"),
)
#: First user id: every id has the same number of digits.
FIRST_UID = 1_000_000


def used_memory(admin: redis.Redis) -> int:
    return int(admin.info("memory")["used_memory"])


def settled(admin: redis.Redis) -> int:
    """Return ``used_memory`` once two readings 0.2 s apart agree within 1 KiB."""
    time.sleep(0.5)
    last = used_memory(admin)
    for _ in range(20):
        time.sleep(0.2)
        now = used_memory(admin)
        if abs(now - last) <= 1024:
            return now
        last = now
    return last


def keyspace_tables(admin: redis.Redis) -> int:
    """Return the bytes of db 0's dictionaries of keys and of expiries (MEMORY STATS)."""
    db = admin.memory_stats().get("db.0") or {}
    return sum(int(db.get(k, 0)) for k in ("overhead.hashtable.main", "overhead.hashtable.expires"))


def request_facts() -> str:
    """Return the request facts the metadata middleware would give a session."""
    from django_charon_sessions.middleware import client_facts

    request = RequestFactory().get("/", REMOTE_ADDR=IP, HTTP_USER_AGENT=USER_AGENT_120)
    return client_facts(request)


@contextlib.contextmanager
def case_settings(case: str) -> Iterator[None]:
    """Turn ``SITE_ACTIVITY`` on for the case that measures it."""
    if case != "signed_in_activity":
        yield
        return
    with override_settings(CHARON_SESSIONS={**settings.CHARON_SESSIONS, "SITE_ACTIVITY": True}):
        yield


def create(engine_name: str, case: str, count: int, auth_hash: str) -> None:
    """Create ``count`` sessions of one case through the engine's ``save()``."""
    store = store_class(ENGINES[engine_name])
    facts = request_facts() if case == "signed_in_facts" else ""
    signed_in = case != "anonymous"
    for i in range(count):
        s = store()
        s.update(DATA)
        if signed_in:
            s[SESSION_KEY] = str(FIRST_UID + i)
            s[BACKEND_SESSION_KEY] = BACKEND
            s[HASH_SESSION_KEY] = auth_hash
        if facts:
            s.client_facts = facts
        s.save()


def run(admin: redis.Redis, user: Any, count: int = 100_000) -> dict[str, Any]:
    """Return bytes per session of every case, with how long creating took."""
    assert len(USER_AGENT_120) == 120
    auth_hash = user.get_session_auth_hash()  # a real one: the same length as any
    out: dict[str, Any] = {"sessions": count, "facts": request_facts()}
    for engine_name, case in CASES:
        with engine_settings(ENGINES[engine_name]), case_settings(case):
            create(engine_name, case, 1, auth_hash)  # connections, function library
            admin.flushall()
            before = settled(admin)
            started = time.perf_counter()
            create(engine_name, case, count, auth_hash)
            seconds = time.perf_counter() - started
            after = settled(admin)
        keys = admin.dbsize()
        out.setdefault(engine_name, {})[case] = {
            "bytes_per_session": round((after - before) / count, 1),
            # The part of it that is the keyspace's dictionaries: an entry per
            # key and per expiry, and bucket arrays that double as keys are added.
            "keyspace_tables_per_session": round(keyspace_tables(admin) / count, 1),
            "keys": keys,
            "create_per_second": round(count / seconds),
        }
    admin.flushall()
    return out
