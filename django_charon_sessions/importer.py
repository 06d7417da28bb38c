"""Bring sessions over from Django's own engines, keeping every cookie valid.

Sources: the ``db`` and ``cached_db`` engines (the ``django_session`` table)
and the ``cache`` engine on a django-redis cache. Each session keeps its key,
so the browser's cookie goes on working: the engine accepts Django's 32
character keys for imported sessions and moves each one to a key of its own
on its next save. A signed-in session is written into its user's slot and
index (so "log out everywhere" reaches it), with a small alias key that
tells the engine, from the cookie alone, where it went.

Progress is checkpointed in Redis after every batch, so an interrupted
import continues where it stopped; a finished one is not repeated (running
it again could bring back sessions their users have since ended).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core import signing
from django.utils import timezone
from django.utils.module_loading import import_string
from redis.exceptions import RedisError

from . import calls
from . import functions as fn
from .client import get_client, is_cluster
from .codec import now
from .conf import charon_settings
from .engine import AUTH_USER_KEY, context
from .keyspace import Keys, alias_key, is_legacy_key, legacy_tag, member_of, user_tag

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

SOURCES = ("db", "cached_db", "cache")
CACHE_PREFIX = "django.contrib.sessions.cache"
# The salt Django's db and cached_db engines sign session data with.
DB_SALT = "django.contrib.sessions.SessionStore"
DONE = "done"


@dataclass
class ImportReport:
    source: str
    dry_run: bool = False
    imported: int = 0
    skipped_expired: int = 0
    already_present: int = 0
    failed: int = 0
    resumed: bool = False
    finished: bool = False

    @property
    def seen(self) -> int:
        return self.imported + self.skipped_expired + self.already_present + self.failed


@dataclass
class OldSession:
    key: str
    data: dict[str, Any] | None  # None: could not be decoded
    ttl: int  # seconds left


def _checkpoint_key(source: str) -> str:
    return f"{charon_settings.KEY_PREFIX}:import:{source}"


def _db_batches(after: str, size: int) -> Iterator[tuple[list[OldSession], str]]:
    from django.contrib.sessions.models import Session

    serializer = import_string(settings.SESSION_SERIALIZER)
    now = timezone.now()
    while True:
        rows = list(
            Session.objects.filter(session_key__gt=after)
            .order_by("session_key")
            .values_list("session_key", "session_data", "expire_date")[:size]
        )
        if not rows:
            return
        batch = []
        for key, raw, expires in rows:
            try:
                data = signing.loads(raw, salt=DB_SALT, serializer=serializer)
            except Exception:  # noqa: BLE001 - any undecodable row counts as failed
                data = None
            batch.append(OldSession(key, data, int((expires - now).total_seconds())))
        after = rows[-1][0]
        yield batch, after


def _cache_batches(alias: str, cursor: str, size: int) -> Iterator[tuple[list[OldSession], str]]:
    from django.core.cache import caches
    from django_redis import get_redis_connection

    cache: Any = caches[alias]
    raw_client = get_redis_connection(alias)
    pattern = cache.make_key(CACHE_PREFIX + "*")
    marker = cache.make_key(CACHE_PREFIX)
    position = int(cursor or 0)
    while True:
        position, raw_keys = raw_client.scan(position, match=pattern, count=size)
        batch = []
        for raw in raw_keys:
            key = raw.decode()[len(marker) :]
            try:
                data = cache.get(CACHE_PREFIX + key)
            except Exception:  # noqa: BLE001 - an undecodable value counts as failed
                data = None
            ttl = cache.ttl(CACHE_PREFIX + key)
            seconds = settings.SESSION_COOKIE_AGE if ttl is None else int(ttl)
            if data is not None or seconds > 0:
                batch.append(OldSession(key, data if isinstance(data, dict) else None, seconds))
        yield batch, (str(position) if position else DONE)
        if position == 0:
            return


def _plan(old: OldSession) -> tuple[list[tuple[str, list[Any]]], str | None]:
    """Return the commands writing one session: (first key, command) pairs."""
    assert old.data is not None
    uid = old.data.get(AUTH_USER_KEY)
    uid = None if uid is None else str(uid)
    ctx = context()
    tag = user_tag(uid) if uid else legacy_tag(old.key)
    keys = Keys.for_member(ctx.prefix, tag, member_of(old.key))
    created = now()
    record = ctx.codec.record(keys.member, uid, created, ctx.codec.dumps(old.data), 1, created)
    ttl_ms = old.ttl * 1000
    create = calls.create(keys, ttl_ms, uid, created, record, "", ctx.absolute, 0)
    commands = [(keys.record, list(create.command()))]
    if uid:
        alias = alias_key(ctx.prefix, old.key)
        commands.append((alias, ["SET", alias, tag, "PX", ttl_ms]))
    return commands, uid


def _execute(client: Any, commands: list[tuple[str, list[Any]]]) -> list[Any]:
    """Run commands pipelined, per node on a Cluster; return replies in order."""
    if not is_cluster(client):
        pipe = client.pipeline(transaction=False)
        for _, command in commands:
            pipe.execute_command(*command)
        return list(pipe.execute())
    groups: dict[str, tuple[Any, list[int]]] = {}
    for n, (key, _) in enumerate(commands):
        node = client.get_node_from_key(key)
        groups.setdefault(node.name, (client.get_redis_connection(node), []))[1].append(n)
    replies: list[Any] = [None] * len(commands)
    for node_client, positions in groups.values():
        pipe = node_client.pipeline(transaction=False)
        for n in positions:
            pipe.execute_command(*commands[n][1])
        for n, reply in zip(positions, pipe.execute(), strict=True):
            replies[n] = reply
    return replies


def _write_batch(client: Any, batch: list[OldSession], report: ImportReport) -> None:
    commands: list[tuple[str, list[Any]]] = []
    saves: list[int] = []
    for old in batch:
        if old.data is None or not is_legacy_key(old.key):
            report.failed += 1
        elif old.ttl <= 0:
            report.skipped_expired += 1
        elif report.dry_run:
            report.imported += 1
        else:
            planned, _ = _plan(old)
            saves.append(len(commands))
            commands += planned
    if not commands:
        return
    replies = _execute(client, commands)
    for n in saves:
        if int(replies[n]) >= 1:
            report.imported += 1
        else:
            report.already_present += 1


def import_sessions(
    source: str,
    *,
    cache_alias: str = "default",
    batch_size: int = 500,
    dry_run: bool = False,
    restart: bool = False,
    progress: Callable[[ImportReport], None] | None = None,
) -> ImportReport:
    """Copy sessions from ``source`` (one of :data:`SOURCES`); return the counts."""
    client: Any = get_client()
    report = ImportReport(source=source, dry_run=dry_run)
    checkpoint = _checkpoint_key(source)
    try:
        if charon_settings.LOAD_FUNCTIONS and not dry_run:
            fn.load_library(client)  # pipelines cannot load it on demand
        position = "" if restart else (fn.get(client, checkpoint) or b"").decode()
        if position == DONE and not dry_run:
            report.resumed = report.finished = True
            return report
        report.resumed = bool(position) and position != DONE
        if position == DONE:
            position = ""
        batches = (
            _cache_batches(cache_alias, position, batch_size)
            if source == "cache"
            else _db_batches(position, batch_size)
        )
        for batch, position in batches:
            _write_batch(client, batch, report)
            if not dry_run:
                client.set(checkpoint, position)
            if progress:
                progress(report)
        if not dry_run:
            client.set(checkpoint, DONE)
        report.finished = True
    except RedisError as exc:
        raise fn.translate(exc) from exc
    return report
