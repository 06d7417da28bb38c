"""Cleanup over all users: what ``sessions_cleanup`` and ``clear_expired`` run.

Redis expires sessions by itself and every write prunes its user's index, so
nothing here is needed for correctness. Cleanup removes index entries whose
session expired or vanished (evicted under ``maxmemory``, say) from indexes
nobody wrote to lately, and deletes the hashes of ended sessions (dead
already) so their memory comes back before their TTL.

It walks the keyspace with ``SCAN`` (never ``KEYS``) on every primary, in
batches, and pipelines its calls per node: two round trips per batch of user
indexes. Every removal is decided inside a function call, so two runs that
overlap, or a run that races with logins, remove only what is stale.
"""

from __future__ import annotations

import importlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis
from redis.exceptions import RedisError

from . import calls
from . import functions as fn
from .client import get_async_client, get_client, is_cluster
from .conf import charon_settings
from .keyspace import UserKeys, user_key_pattern

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

# hiredis is optional; imported by name so type checking needs no stubs for it.
try:
    _pack: Any = importlib.import_module("hiredis").pack_command
except ImportError:  # pragma: no cover
    _pack = None

# redis-py's own connection classes: real sockets that take packed commands.
_SOCKET_CONNECTIONS = (redis.Connection, redis.SSLConnection, redis.UnixDomainSocketConnection)

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


def _pattern(kind: str) -> str:
    return user_key_pattern(charon_settings.KEY_PREFIX, kind)


def _name(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _batches(client: Any, pattern: str, size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for raw in client.scan_iter(match=pattern, count=size, _type="zset"):
        batch.append(_name(raw))
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _by_node(client: Any, keys: list[str]) -> list[tuple[Any, list[str]]]:
    """Group keys by the node that serves them (one group on standalone)."""
    if not is_cluster(client):
        return [(client, keys)]
    groups: dict[str, tuple[Any, list[str]]] = {}
    for key in keys:
        node = client.get_node_from_key(key)
        groups.setdefault(node.name, (client.get_redis_connection(node), []))[1].append(key)
    return list(groups.values())


def _send_all(node: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    """Send commands in one write and read every reply, in order.

    For thousands of small commands this is several times cheaper than
    redis-py's pipeline, whose per-command bookkeeping dominates a cleanup;
    it needs hiredis and a real socket connection, else the pipeline is used.
    """
    pool = getattr(node, "connection_pool", None)
    if _pack is None or pool is None or pool.connection_class not in _SOCKET_CONNECTIONS:
        pipe = node.pipeline(transaction=False)
        for command in commands:
            pipe.execute_command(*command)
        return list(pipe.execute())
    try:
        conn = pool.get_connection()
    except TypeError:  # redis-py before 5.3 wants a command name
        conn = pool.get_connection("FCALL")
    try:
        conn.send_packed_command([b"".join(_pack(command) for command in commands)])
        # An error reply raises here; the rest are left unread, hence disconnect.
        replies = [conn.read_response(disable_decoding=True) for _ in commands]
    except BaseException:
        conn.disconnect()  # unread replies would confuse its next user
        raise
    finally:
        pool.release(conn)
    return replies


def _sweep_index_batch(node: Any, indexes: list[str], dry: bool) -> list[UserReport]:
    member_lists = _send_all(node, [("ZRANGE", index, 0, -1) for index in indexes])
    commands: list[tuple[Any, ...]] = []
    owners: list[str] = []
    for index, raw_members in zip(indexes, member_lists, strict=True):
        keys = UserKeys.for_index(index)
        for chunk in _chunks([_name(m) for m in raw_members], SWEEP_CHUNK):
            commands.append(calls.sweep(keys, chunk, dry).command())
            owners.append(index)
    reports = {index: UserReport(UserKeys.for_index(index).tag) for index in indexes}
    for index, (expired, vanished, live) in zip(owners, _send_all(node, commands), strict=True):
        r = reports[index]
        r.expired, r.vanished, r.live = r.expired + expired, r.vanished + vanished, r.live + live
    return list(reports.values())


def _purge_ended_batch(node: Any, ended_keys: list[str], dry_run: bool) -> int:
    purged = 0
    for ended in ended_keys:
        if dry_run:
            purged += int(node.zcard(ended))
            continue
        keys = UserKeys.for_index(ended)
        while members := [_name(m) for m in node.zrange(ended, 0, SWEEP_CHUNK - 1)]:
            purged += int(node.execute_command(*calls.purge(keys, members).command()))
    return purged


def _sweep_batch(client: Any, batch: list[str], dry: bool) -> list[UserReport]:
    users: list[UserReport] = []
    for node, indexes in _by_node(client, batch):
        users += _sweep_index_batch(node, indexes, dry)
    return users


def _collect(
    future: Future[list[UserReport]],
    report: CleanupReport,
    detail: bool,
    progress: Callable[[CleanupReport], None] | None,
) -> None:
    for user in future.result():
        report.add(user, detail)
    if progress:
        progress(report)


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
    except fn.LibraryMissing:
        return _cleanup(batch_size, dry_run, detail, progress)


def _cleanup(
    batch_size: int,
    dry_run: bool,
    detail: bool,
    progress: Callable[[CleanupReport], None] | None,
) -> CleanupReport:
    client: Any = get_client()
    report = CleanupReport(dry_run=dry_run)
    try:
        if charon_settings.LOAD_FUNCTIONS:
            fn.load_library(client)  # pipelines cannot load it on demand
        # Two batches in flight: one is packed or read here while Redis works
        # on the other. More would only queue behind Redis's single thread.
        with ThreadPoolExecutor(max_workers=2) as pool:
            pending: deque[Future[list[UserReport]]] = deque()
            for batch in _batches(client, _pattern("i"), batch_size):
                pending.append(pool.submit(_sweep_batch, client, batch, dry_run))
                if len(pending) == 2:
                    _collect(pending.popleft(), report, detail, progress)
            while pending:
                _collect(pending.popleft(), report, detail, progress)
        for batch in _batches(client, _pattern("x"), batch_size):
            for node, ended in _by_node(client, batch):
                report.ended_purged += _purge_ended_batch(node, ended, dry_run)
            if progress:
                progress(report)
    except RedisError as exc:
        if fn.is_missing(exc) and charon_settings.LOAD_FUNCTIONS:
            raise fn.LibraryMissing from exc
        raise fn.translate(exc) from exc
    return report


async def acleanup(*, batch_size: int = DEFAULT_BATCH, dry_run: bool = False) -> CleanupReport:
    """Async twin of :func:`cleanup` (one call per user, without pipelining)."""
    client: Any = get_async_client()
    report = CleanupReport(dry_run=dry_run)
    try:
        async for raw in client.scan_iter(match=_pattern("i"), count=batch_size, _type="zset"):
            index = _name(raw)
            keys = UserKeys.for_index(index)
            user = UserReport(keys.tag)
            members = [_name(m) for m in await client.zrange(index, 0, -1)]
            for chunk in _chunks(members, SWEEP_CHUNK):
                call = calls.sweep(keys, chunk, dry_run)
                expired, vanished, live = await calls.arun(client, call)
                user.expired, user.vanished = user.expired + expired, user.vanished + vanished
                user.live += live
            report.add(user, keep_detail=False)
        async for raw in client.scan_iter(match=_pattern("x"), count=batch_size, _type="zset"):
            ended = _name(raw)
            if dry_run:
                report.ended_purged += int(await client.zcard(ended))
                continue
            keys = UserKeys.for_index(ended)
            while members := [_name(m) for m in await client.zrange(ended, 0, SWEEP_CHUNK - 1)]:
                report.ended_purged += await calls.arun(client, calls.purge(keys, members))
    except RedisError as exc:
        raise fn.translate(exc) from exc
    return report
