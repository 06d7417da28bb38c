"""Bring sessions over from Django's own engines, keeping every cookie valid.

Sources: the ``db`` and ``cached_db`` engines (the ``django_session`` table)
and the ``cache`` engine on a django-redis cache. Each session keeps its key,
so the browser's cookie goes on working: the engine accepts Django's 32
character keys for imported sessions and moves each one to a key of its own
on ``cycle_key()``. A signed-in session is written into its user's slot and
index (so "log out everywhere" reaches it), with a small alias key that
tells the engine, from the cookie alone, where it went.

A pass may run any number of times, before and after the switch (see
docs/migrating.md):

- every session it writes is entered in the import ledger of its slot (by
  member, never by key), and a session in the ledger is written again only
  while its copy is live: one that was signed out, revoked, ended with its
  user, moved to a new key, or that expired since an earlier pass is refused
  (the ``import`` Redis function decides, atomically);
- a pass that read the whole source in one run then deletes the copies of
  sessions whose rows left the source before their expiry (signed out or
  moved under the old engine), unless the engine has rewritten them since
  (``retract``).

Progress is checkpointed in Redis after every batch, so an interrupted pass
continues where it stopped. The checkpoint holds a position that is no
session key: the first two characters of the last key read (db; rows from
there on are read again) or the cache's ``SCAN`` cursor.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core import signing
from django.utils import timezone
from django.utils.module_loading import import_string

from . import batches, calls
from .client import get_client
from .codec import Codec, user_of
from .conf import charon_settings
from .errors import translated
from .exceptions import SessionStoreError
from .keyspace import (
    Keys,
    alias_key,
    import_state_key,
    is_legacy_key,
    key_prefix,
    ledger_key,
    ledger_pattern,
    legacy_tag,
    member_of,
    tag_of_slot_key,
    user_tag,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

SOURCES = ("db", "cached_db", "cache")
CACHE_PREFIX = "django.contrib.sessions.cache"
# The salt Django's db and cached_db engines sign session data with.
DB_SALT = "django.contrib.sessions.SessionStore"
# The characters of Django's session keys; a checkpoint is two of them.
_GRID = frozenset("0123456789abcdefghijklmnopqrstuvwxyz")
_CHECKPOINT_MARK = "at:"
#: Ledger keys listed per pipelined round trip when looking for removals.
LEDGER_BATCH = 500


class ImportSourceError(SessionStoreError):
    """Another source was imported into this Redis: mixing them would remove each other's."""


@dataclass
class ImportReport:
    source: str
    dry_run: bool = False
    imported: int = 0
    skipped_expired: int = 0
    already_present: int = 0
    #: Refused: imported by an earlier pass and ended, moved or expired here since.
    ended: int = 0
    failed: int = 0
    #: Copies deleted because their rows left the source before their expiry.
    removed: int = 0
    #: Rows that left the source whose copies the engine has rewritten since (kept).
    kept: int = 0
    resumed: bool = False
    finished: bool = False
    #: Whether this pass looked for sessions gone from the source (only a
    #: pass that read the whole source in one run, and found any, does).
    checked_removals: bool = False

    @property
    def seen(self) -> int:
        return (
            self.imported + self.skipped_expired + self.already_present + self.ended + self.failed
        )


@dataclass
class OldSession:
    key: str
    data: dict[str, Any] | None  # None: could not be decoded
    ttl: int  # seconds left


# -- reading the source -------------------------------------------------------


def _grid_point(key: str) -> str | None:
    head = key[:2]
    return head if len(head) == 2 and set(head) <= _GRID else None


def _db_batches(start: str, size: int) -> Iterator[tuple[list[OldSession], str]]:
    """Read the table in key order from ``start``; yield each batch with a resume position.

    The position is the first two characters of the batch's last key: every
    key before them (in the database's own order, where a prefix sorts first)
    has been read. A resumed pass reads again the rows from there on, which
    the import function makes harmless.
    """
    from django.contrib.sessions.models import Session

    serializer = import_string(settings.SESSION_SERIALIZER)
    now_ = timezone.now()
    rows_from = Session.objects.order_by("session_key")
    if start:
        rows_from = rows_from.filter(session_key__gte=start)
    position, after = start, None
    while True:
        page = rows_from if after is None else rows_from.filter(session_key__gt=after)
        rows = list(page.values_list("session_key", "session_data", "expire_date")[:size])
        if not rows:
            return
        batch = []
        for key, raw, expires in rows:
            try:
                data = signing.loads(raw, salt=DB_SALT, serializer=serializer)
            except Exception:  # noqa: BLE001 - any undecodable row counts as failed
                data = None
            batch.append(OldSession(key, data, int((expires - now_).total_seconds())))
        after = rows[-1][0]
        position = _grid_point(after) or position
        yield batch, position


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
        yield batch, str(position)
        if position == 0:
            return


# -- writing -------------------------------------------------------------------


def _keep_ms() -> int:
    # How long a ledger (and an alias) outlives the last pass that wrote it:
    # longer than any sequence of passes needs, bounded by the cookie's age.
    return int(settings.SESSION_COOKIE_AGE) * 1000


@dataclass
class _Planned:
    old: OldSession
    uid: str | None
    tag: str
    keys: Keys


def _import_call(p: _Planned, codec: Codec, prefix: str) -> calls.Call[int]:
    assert p.old.data is not None
    uid, created, record = codec.new_record(p.keys.member, p.old.data)
    return calls.import_session(
        p.keys,
        ledger_key(prefix, p.tag),
        p.old.ttl * 1000,
        uid,
        created,
        record,
        charon_settings.ABSOLUTE_MAX_AGE,
        _keep_ms(),
    )


def _count(report: ImportReport, reply: int) -> None:
    if reply >= 1:
        report.imported += 1
    elif reply == 0:
        report.already_present += 1
    elif reply == -1:
        report.ended += 1
    else:  # -2: its absolute lifetime is over
        report.skipped_expired += 1


def _write_batch(
    client: Any, batch: list[OldSession], report: ImportReport, seen: dict[str, str | None]
) -> None:
    """Import one batch; record in ``seen`` each member read and the slot it belongs in."""
    prefix = key_prefix()
    planned: list[_Planned] = []
    for old in batch:
        if not is_legacy_key(old.key):
            report.failed += 1
            continue
        member = member_of(old.key)
        seen[member] = None  # in the source, whatever becomes of it here
        if old.data is None:
            report.failed += 1
        elif old.ttl <= 0:
            report.skipped_expired += 1
        else:
            uid = user_of(old.data)
            tag = user_tag(uid) if uid is not None else legacy_tag(old.key)
            seen[member] = tag
            if report.dry_run:
                report.imported += 1
            else:
                planned.append(_Planned(old, uid, tag, Keys.for_member(prefix, tag, member)))
    if not planned:
        return
    codec = Codec.from_settings()
    replies = batches.send(client, [_import_call(p, codec, prefix).command() for p in planned])
    aliases: list[tuple[Any, ...]] = []
    keep_ms = _keep_ms()
    for p, raw in zip(planned, replies, strict=True):
        reply = int(raw)
        _count(report, reply)
        if p.uid is not None and reply >= 0:
            # Only the copy's slot; the alias is a pointer, harmless if the
            # copy ends meanwhile, and it outlives the copy's source expiry
            # so a session the engine keeps alive stays reachable.
            alias = alias_key(prefix, p.old.key)
            px = max(p.old.ttl * 1000, keep_ms)
            aliases.append(("SET", alias, p.tag, "PX", px))
    batches.send(client, aliases)


# -- sessions gone from the source ----------------------------------------------


def _members(client: Any, names: list[str]) -> list[list[tuple[str, float]]]:
    """Return each ledger's (member, score) pairs, pipelined per node."""
    replies = batches.send(client, [("ZRANGE", n, 0, -1, "WITHSCORES") for n in names])
    out = []
    for reply in replies:
        flat: list[Any] = []
        for item in reply:  # RESP2: flat; RESP3: pairs
            flat.extend(item if isinstance(item, (list, tuple)) else [item])
        pairs = zip(flat[::2], flat[1::2], strict=True)
        out.append([(m.decode() if isinstance(m, bytes) else str(m), float(s)) for m, s in pairs])
    return out


def _gone(
    names: list[str], listings: list[list[tuple[str, float]]], seen: dict[str, str | None]
) -> Iterable[tuple[str, str]]:
    """Yield (tag, member) of ledger entries whose rows left the source before their expiry."""
    now_ms = time.time() * 1000
    for name, pairs in zip(names, listings, strict=True):
        tag = tag_of_slot_key(name)
        for member, expires in pairs:
            where = seen.get(member, "")
            # Not in the source, or now in another slot (its user changed).
            if expires > now_ms and (where == "" or (where is not None and where != tag)):
                yield tag, member


def _retract_gone(client: Any, seen: dict[str, str | None], report: ImportReport) -> None:
    prefix = key_prefix()
    for names in batches.scan(client, ledger_pattern(prefix), LEDGER_BATCH):
        gone = list(_gone(names, _members(client, names), seen))
        if report.dry_run:
            report.removed += len(gone)
            continue
        planned = [(Keys.for_member(prefix, tag, m), ledger_key(prefix, tag)) for tag, m in gone]
        for raw in batches.send(
            client, [calls.retract(k, ledger).command() for k, ledger in planned]
        ):
            reply = int(raw)
            report.removed += reply == 1
            report.kept += reply == 2


# -- the pass ------------------------------------------------------------------


def _claim_source(client: Any, source: str) -> None:
    """Refuse a second source: each pass would remove the other's sessions as gone."""
    table = "cache" if source == "cache" else "db"  # db and cached_db read one table
    key = import_state_key(key_prefix(), "source")
    claimed = calls.get(client, key)
    if claimed is not None and claimed.decode() != table:
        raise ImportSourceError(
            f"Sessions were imported from {claimed.decode()!r} into this Redis; importing "
            f"from {table!r} too would remove them as gone from the source. Import from one "
            "source only."
        )
    client.set(key, table, px=_keep_ms())


def _read_checkpoint(client: Any, key: str) -> str:
    raw = calls.get(client, key)
    value = raw.decode() if raw else ""
    return value[len(_CHECKPOINT_MARK) :] if value.startswith(_CHECKPOINT_MARK) else ""


def import_sessions(
    source: str,
    *,
    cache_alias: str = "default",
    batch_size: int = 500,
    dry_run: bool = False,
    restart: bool = False,
    progress: Callable[[ImportReport], None] | None = None,
) -> ImportReport:
    """Run one pass: copy sessions from ``source`` (one of :data:`SOURCES`); return the counts.

    Safe to run again at any time: a session ended, moved or expired here
    since an earlier pass is never written back, and the copy of a session
    whose row left the source is deleted unless the engine rewrote it.
    With ``restart`` an interrupted pass starts over instead of resuming.
    """
    client: Any = get_client()
    report = ImportReport(source=source, dry_run=dry_run)
    checkpoint = import_state_key(key_prefix(), source)
    seen: dict[str, str | None] = {}
    with translated():
        if not dry_run:
            batches.prepare(client)
            _claim_source(client, source)
        position = "" if restart or dry_run else _read_checkpoint(client, checkpoint)
        report.resumed = bool(position)
        source_batches = (
            _cache_batches(cache_alias, position, batch_size)
            if source == "cache"
            else _db_batches(position, batch_size)
        )
        for batch, position in source_batches:
            _write_batch(client, batch, report, seen)
            if not dry_run:
                client.set(checkpoint, _CHECKPOINT_MARK + position, px=_keep_ms())
            if progress:
                progress(report)
        # Only a whole source read in one run tells what left it; an empty
        # one more likely means the old sessions were cleared on purpose.
        if not report.resumed and seen:
            _retract_gone(client, seen, report)
            report.checked_removals = True
        if not dry_run:
            client.delete(checkpoint)
        report.finished = True
    return report
