"""Many sessions: filling a store, a user's sessions, cleanup.

Memory per session is measured by :mod:`benchmarks.memory`.

Filling copies one real session of the engine (made through the engine, so
its format is exact) under fresh names with ``DUMP``/``RESTORE`` in
pipelines, or with bulk inserts for the database engines: fast enough for a
million sessions, and every copy is a valid session of its engine. (A copy
of this engine's session is another user's: record, index entry and
metadata under a new tag, consistent and verifiable, but no session key
names it, since the record's name and MAC bind the hash of the original
key.) :func:`fill_sessions` makes sessions that can be loaded by key, for
the measurements by size.
"""

from __future__ import annotations

import secrets
import statistics
import time
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.utils import timezone

from benchmarks.engines import ENGINES, Engine
from benchmarks.measure import DATA, auth_data, engine_settings, make_sessions, store_class

if TYPE_CHECKING:
    from collections.abc import Iterator

    import redis

CHUNK = 5_000


def redis_names(engine: Engine, session_key: str) -> list[str]:
    """Every Redis key one session of ``engine`` uses (its index and metadata too)."""
    if engine.name == "charon":
        from django_charon_sessions.keyspace import Keys, key_prefix

        keys = Keys.for_session(key_prefix(), session_key)
        return [keys.record, keys.index, keys.meta]
    if engine.name == "floor":
        return ["floor:" + session_key]
    cache = caches[engine.cache_alias]
    prefix = "django.contrib.sessions.cache"
    if engine.name == "cached_db":
        prefix = "django.contrib.sessions.cached_db"
    return [cache.make_key(prefix + session_key)]


def _rename(engine: Engine, names: list[str]) -> list[str]:
    if engine.name == "charon":
        # A new tag: the copy is another user's session (index and metadata
        # included), consistent and verifiable (the MACs bind the member).
        from django_charon_sessions.keyspace import random_tag, retag

        tag = random_tag()
        return [retag(n, tag) for n in names]
    suffix = secrets.token_hex(16)
    return [n[:-32] + suffix for n in names]


def fill(engine: Engine, admin: redis.Redis, count: int, user: Any) -> None:
    """Add ``count`` signed-in sessions to the engine's store."""
    if count <= 0:
        return
    with engine_settings(engine):
        [template] = make_sessions(engine, 1, user)
        if engine.module.endswith((".db", ".cached_db")):
            _fill_db(template, count)
        if engine.uses_redis:
            _fill_redis(engine, admin, template, count)


def _fill_redis(engine: Engine, admin: redis.Redis, template: str, count: int) -> list[list[str]]:
    """Copy the template session ``count`` times; return each copy's key names."""
    names = [n for n in redis_names(engine, template) if admin.exists(n)]
    dumps = [(admin.dump(n), max(admin.pttl(n), 0)) for n in names]
    pipe = admin.pipeline(transaction=False)
    copies = []
    for i in range(count):
        renamed = _rename(engine, names)
        for name, (payload, ttl) in zip(renamed, dumps, strict=True):
            pipe.restore(name, ttl, payload, replace=True)
        copies.append(renamed)
        if i % CHUNK == CHUNK - 1:
            pipe.execute()
    pipe.execute()
    return copies


def fill_sessions(
    name: str, admin: redis.Redis, count: int, session: dict[str, Any], user: Any
) -> list[str]:
    """Add ``count`` sessions holding ``session`` (``user``'s); return their keys.

    For ``floor`` (plain ``SET``s of the pickled dict, see
    :func:`benchmarks.store.floor_keys`), ``charon`` and ``cache_django_redis``:
    every one can be loaded by its key. The cache engine's are ``DUMP``/
    ``RESTORE`` copies of one session made through the engine. This engine's
    are each another user's (a random tag, so a fresh index and metadata):
    the record is built and sealed as the engine builds it and written by
    the engine's own ``create`` function, pipelined, so the layout is exact.
    """
    if count <= 0:
        return []
    if name == "floor":
        from benchmarks.store import floor_keys

        return floor_keys(session, count)
    engine = ENGINES[name]
    with engine_settings(engine):
        [template] = make_sessions(engine, 1, user)
        if name == "charon":
            return [template, *_fill_charon(admin, session, count - 1)]
        names = [n for n in redis_names(engine, template) if admin.exists(n)]
        assert len(names) == 1, names
        assert names[0].endswith(template), names
        copies = _fill_redis(engine, admin, template, count - 1)
        return [template, *(n[0][-len(template) :] for n in copies)]


def _fill_charon(admin: redis.Redis, session: dict[str, Any], count: int) -> list[str]:
    import base64
    import os

    from django.conf import settings
    from django.contrib.auth import SESSION_KEY

    from django_charon_sessions import calls
    from django_charon_sessions.codec import now
    from django_charon_sessions.keyspace import KEY_LENGTH, Keys, is_engine_key, key_prefix
    from django_charon_sessions.state import context

    ctx = context()
    body = ctx.codec.dumps(session)
    uid = str(session[SESSION_KEY])
    ttl = settings.SESSION_COOKIE_AGE * 1000
    created = now()
    keys = []
    pipe = admin.pipeline(transaction=False)
    for i in range(count):
        # 40 characters of [a-z2-7]: a random tag and a random rest.
        key = base64.b32encode(os.urandom(25)).decode("ascii").lower()[:KEY_LENGTH]
        names = Keys.for_session(key_prefix(), key)
        record = ctx.codec.record(names.member, uid, created, body, 1, created)
        call = calls.create(
            names, ttl, uid, created, record, "", ctx.absolute, ctx.limit, ctx.activity
        )
        pipe.execute_command(*call.command())
        keys.append(key)
        if i % CHUNK == CHUNK - 1:
            _all_created(pipe.execute())
    _all_created(pipe.execute())
    assert not keys or is_engine_key(keys[0]), keys[0]
    return keys


def _all_created(replies: list[Any]) -> None:
    # 1: created; 0 would be a key taken already, anything else a failure.
    assert all(r == 1 for r in replies), [r for r in replies if r != 1][:3]


def _fill_db(template: str, count: int) -> None:
    row = Session.objects.get(session_key=template)
    expire = timezone.now() + timedelta(days=14)
    for start in range(0, count, CHUNK * 4):
        n = min(CHUNK * 4, count - start)
        Session.objects.bulk_create(
            Session(session_key=secrets.token_hex(16), session_data=row.session_data,
                    expire_date=expire)
            for _ in range(n)
        )  # fmt: skip


def clear(admin: redis.Redis) -> None:
    admin.flushall()
    Session.objects.all().delete()


# -- a user's sessions: list and end -----------------------------------------------


@contextmanager
def round_trips() -> Iterator[list[int]]:
    """Count what this process sends: writes to Redis, and SQL queries.

    Yields ``[redis_writes, sql_queries]``, filled in when the block ends. A
    write is one round trip: a command, or a whole pipeline. (Redis's own
    command statistics would also count the commands a function runs
    inside the server, which are not round trips.)
    """
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from redis.connection import AbstractConnection

    counts = [0, 0]
    original = AbstractConnection.send_packed_command

    def counting(self: Any, command: Any, check_health: bool = True) -> None:
        counts[0] += 1
        original(self, command, check_health)

    AbstractConnection.send_packed_command = counting  # type: ignore[method-assign]
    try:
        with CaptureQueriesContext(connection) as queries:
            yield counts
    finally:
        AbstractConnection.send_packed_command = original  # type: ignore[method-assign]
    counts[1] = len(queries.captured_queries)


def counted(func: Any, reps: int) -> tuple[float, list[int]]:
    """Return (median seconds, [round trips to Redis, SQL queries]) of ``func``.

    ``func`` is called once to count, then ``reps`` times to time.
    """
    with round_trips() as counts:
        func()
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return statistics.median(times), counts


def list_user(engine: Engine, user: Any, admin: redis.Redis) -> list[Any]:
    """List a user's sessions the way each engine allows."""
    if engine.name == "charon":
        from django_charon_sessions.api import list_sessions

        return list_sessions(user)
    uid = str(user.pk)
    if engine.name == "db":
        return [
            s.session_key
            for s in Session.objects.iterator(chunk_size=2000)
            if s.get_decoded().get("_auth_user_id") == uid
        ]
    # A cache engine: every session key in Redis, then every value.
    cache = caches[engine.cache_alias]
    store = store_class(engine)
    pattern = cache.make_key("django.contrib.sessions.cache") + "*"
    found = []
    batch: list[bytes] = []
    for name in admin.scan_iter(match=pattern, count=2000):
        batch.append(name)
        if len(batch) == 2000:
            found += _matching(store, batch, uid, cache)
            batch = []
    return found + _matching(store, batch, uid, cache)


def _matching(store: Any, names: list[bytes], uid: str, cache: Any) -> list[str]:
    prefix = len(cache.make_key("django.contrib.sessions.cache"))
    keys = [n.decode()[prefix:] for n in names]
    values = cache.get_many([f"django.contrib.sessions.cache{k}" for k in keys])
    return [
        k
        for k in keys
        if (values.get(f"django.contrib.sessions.cache{k}") or {}).get("_auth_user_id") == uid
    ]


def end_user(engine: Engine, user: Any, admin: redis.Redis) -> int:
    """End every session of a user the way each engine allows; return how many."""
    if engine.name == "charon":
        from django_charon_sessions.api import end_sessions

        return end_sessions(user)
    found = list_user(engine, user, admin)
    if engine.name == "db":
        Session.objects.filter(session_key__in=found).delete()
    else:
        caches[engine.cache_alias].delete_many([f"django.contrib.sessions.cache{k}" for k in found])
    return len(found)


def user_ops(
    admin: redis.Redis, make_user: Any, total: int, reps: int
) -> dict[str, dict[str, float | int]]:
    """List a user with 1,000 sessions and end a user with 10,000, among ``total``."""
    out: dict[str, dict[str, float | int]] = {}
    for name in ("charon", "cache_django_redis", "db"):
        engine = ENGINES[name]
        clear(admin)
        with engine_settings(engine):
            lister, ender = make_user(), make_user()
            make_sessions(engine, 1000, lister)
            fill(engine, admin, max(total - 11_000, 0), make_user())
            seconds, calls = counted(lambda e=engine, u=lister: list_user(e, u, admin), reps)
            assert len(list_user(engine, lister, admin)) == 1000
            make_sessions(engine, 10_000, ender)
            with round_trips() as end_calls:
                started = time.perf_counter()
                ended = end_user(engine, ender, admin)
                end_seconds = time.perf_counter() - started
            assert ended == 10_000, ended
        out[name] = {
            "list_1000_ms": round(seconds * 1000, 2),
            "list_1000_round_trips": calls[0],
            "list_1000_sql": calls[1],
            "end_10000_ms": round(end_seconds * 1000, 2),
            "end_10000_round_trips": end_calls[0],
            "end_10000_sql": end_calls[1],
        }
    return out


# -- cleanup -------------------------------------------------------------------


def cleanup(admin: redis.Redis, stale: int) -> dict[str, dict[str, float]]:
    """Remove ``stale`` expired entries: the index sweep here, expired rows for db."""
    from benchmarks.cleanup import seed
    from django_charon_sessions.maintenance import cleanup as charon_cleanup

    clear(admin)
    seed(admin, stale // 10, 10, 1)
    started = time.perf_counter()
    result = charon_cleanup()
    seconds = time.perf_counter() - started
    removed = result.expired + result.vanished
    out = {"charon": {"removed": removed, "per_second": round(removed / seconds)}}

    engine = ENGINES["db"]
    with engine_settings(engine):
        [template] = make_sessions(engine, 1, None)
        _fill_db(template, stale)
        Session.objects.update(expire_date=timezone.now() - timedelta(days=1))
        store = store_class(engine)
        started = time.perf_counter()
        store.clear_expired()
        seconds = time.perf_counter() - started
    out["db"] = {"removed": stale + 1, "per_second": round((stale + 1) / seconds)}
    return out


__all__ = ["DATA", "auth_data", "cleanup", "fill", "user_ops"]
