"""Cleanup over all users: what ``sessions_cleanup`` and ``clear_expired`` run.

Redis expires sessions by itself and every write prunes its user's index, so
nothing here is needed for correctness. Cleanup removes index entries whose
session expired or vanished (evicted under ``maxmemory``, say) from indexes
nobody wrote to lately, and deletes the hashes of ended sessions (dead
already) so their memory comes back before their TTL.

It walks the keyspace with ``SCAN`` (never ``KEYS``) on every primary, in
batches, and sends its calls in batches per node (:mod:`.batches`): two round
trips per batch of user indexes. :func:`cleanup` and :func:`acleanup` run the
same plans. Every removal is decided inside a function call, so two runs that
overlap, or a run that races with logins, remove only what is stale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import batches, calls
from .client import get_async_client, get_client
from .errors import LibraryMissing
from .keyspace import UserKeys, ended_pattern, index_pattern, key_prefix

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from .batches import Plan

DEFAULT_BATCH = 2000
#: Members sent to one sweep call.
SWEEP_CHUNK = 1000


@dataclass
class UserReport:
    """What cleanup found in one user's index (named by its tag)."""

    tag: str
    expired: int = 0
    vanished: int = 0
    live: int = 0


@dataclass
class CleanupReport:
    """Totals of one cleanup run."""

    dry_run: bool = False
    indexes: int = 0
    expired: int = 0
    vanished: int = 0
    ended_purged: int = 0
    live_sessions: int = 0
    users: int = 0
    details: list[UserReport] = field(default_factory=list)

    @property
    def removed(self) -> int:
        return self.expired + self.vanished + self.ended_purged

    def add(self, user: UserReport, keep_detail: bool) -> None:
        self.indexes += 1
        self.expired += user.expired
        self.vanished += user.vanished
        self.live_sessions += user.live
        self.users += user.live > 0
        if keep_detail:
            self.details.append(user)


def _name(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- the plans: what cleanup sends, shared by the sync and async drivers -----------


def sweep_plan(indexes: list[str], dry_run: bool) -> Plan[list[UserReport]]:
    """Sweep a batch of user indexes: list their members, then check them in sweep calls."""
    member_lists = yield [("ZRANGE", index, 0, -1) for index in indexes]
    reports: list[UserReport] = []
    commands: list[tuple[Any, ...]] = []
    owners: list[UserReport] = []
    for index, raw_members in zip(indexes, member_lists, strict=True):
        keys = UserKeys.for_index(index)
        report = UserReport(keys.tag)
        reports.append(report)
        for chunk in _chunks([_name(m) for m in raw_members], SWEEP_CHUNK):
            commands.append(calls.sweep(keys, chunk, dry_run).command())
            owners.append(report)
    replies = yield commands
    for r, (expired, vanished, live) in zip(owners, replies, strict=True):
        r.expired, r.vanished, r.live = r.expired + expired, r.vanished + vanished, r.live + live
    return reports


def purge_plan(ended: list[str], dry_run: bool) -> Plan[int]:
    """Delete the records of a batch of ended sets' sessions (count them, dry); return how many."""
    if dry_run:
        return sum(int(n) for n in (yield [("ZCARD", name) for name in ended]))
    purged = 0
    while ended:
        listings = yield [("ZRANGE", name, 0, SWEEP_CHUNK - 1) for name in ended]
        found = [
            (name, [_name(m) for m in members])
            for name, members in zip(ended, listings, strict=True)
            if members
        ]
        commands = [calls.purge(UserKeys.for_index(n), members).command() for n, members in found]
        purged += sum(int(reply) for reply in (yield commands))
        ended = [name for name, _ in found]
    return purged


# -- drivers ------------------------------------------------------------------------


def cleanup(
    *,
    batch_size: int = DEFAULT_BATCH,
    dry_run: bool = False,
    detail: bool = False,
    progress: Callable[[CleanupReport], None] | None = None,
) -> CleanupReport:
    """Remove stale index entries and ended sessions' data; return the report.

    With ``dry_run`` nothing is removed and the report says what would be.
    ``progress`` is called after each batch with the report so far. If the
    library vanishes during the run (``FUNCTION FLUSH``, a failover), it is
    loaded again and the run, which is idempotent, done once more.
    """
    try:
        return _cleanup(batch_size, dry_run, detail, progress)
    except LibraryMissing:
        return _cleanup(batch_size, dry_run, detail, progress)


def _cleanup(
    batch_size: int,
    dry_run: bool,
    detail: bool,
    progress: Callable[[CleanupReport], None] | None,
) -> CleanupReport:
    client = get_client()
    report = CleanupReport(dry_run=dry_run)
    batches.prepare(client)
    prefix = key_prefix()
    found = batches.scan(client, index_pattern(prefix), batch_size)
    for users in batches.run_all(client, (sweep_plan(b, dry_run) for b in found)):
        for user in users:
            report.add(user, detail)
        if progress:
            progress(report)
    for ended in batches.scan(client, ended_pattern(prefix), batch_size):
        report.ended_purged += batches.run(client, purge_plan(ended, dry_run))
        if progress:
            progress(report)
    return report


async def acleanup(*, batch_size: int = DEFAULT_BATCH, dry_run: bool = False) -> CleanupReport:
    """Async twin of :func:`cleanup`."""
    try:
        return await _acleanup(batch_size, dry_run)
    except LibraryMissing:
        return await _acleanup(batch_size, dry_run)


async def _acleanup(batch_size: int, dry_run: bool) -> CleanupReport:
    client = get_async_client()
    report = CleanupReport(dry_run=dry_run)
    await batches.aprepare(client)
    prefix = key_prefix()
    async for indexes in batches.ascan(client, index_pattern(prefix), batch_size):
        for user in await batches.arun(client, sweep_plan(indexes, dry_run)):
            report.add(user, keep_detail=False)
    async for ended in batches.ascan(client, ended_pattern(prefix), batch_size):
        report.ended_purged += await batches.arun(client, purge_plan(ended, dry_run))
    return report
