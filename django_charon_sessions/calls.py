"""One typed caller per Redis function, and the lean path that sends them.

Each function of the Lua library has exactly one stub here: the only code
that knows its ``KEYS`` and ``ARGV`` order. A stub returns a :class:`Call`;
:func:`run` sends it on a sync client and :func:`arun` on an async one, so
the engine, the api, cleanup and the importer share one path per function.

On a standalone server a call is one :func:`.client.exchange`: redis-py's
generic command path (retries, hooks, response callbacks) costs several
microseconds per call that a session store pays on every request. On a
Cluster the call names the node of its key's slot and lets redis-py's
cluster client follow ``MOVED``/``ASK`` and topology changes. The few plain
commands the engine needs (:func:`get`) take the same path. Cleanup and the
importer send the same calls many at a time (:mod:`.batches`).

Nothing is retried once it was sent: a write that timed out may have been
applied (see docs/design.md). Only "function not found" loads the library and
sends the call once more, since nothing ran.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

import redis.exceptions as rexc

from .client import aexchange, exchange, is_cluster, transport_gone
from .conf import charon_settings
from .errors import REDIS_ERRORS, is_missing, missing_error, translate
from .keyspace import ACTIVITY_WINDOW_MS, USERS_WINDOW_MS, activity_keys
from .library import SOURCE, function_name

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from .client import AsyncClient, SyncClient
    from .keyspace import Keys, UserKeys

T = TypeVar("T")


class Call(Generic[T]):
    """One call of a library function, ready to send."""

    __slots__ = ("args", "function", "keys", "parse", "read_only")

    def __init__(
        self,
        function: str,
        keys: Sequence[str],
        args: Sequence[Any],
        parse: Callable[[Any], T],
        read_only: bool = False,
    ) -> None:
        self.function = function
        self.keys = keys
        self.args = args
        self.parse = parse
        self.read_only = read_only

    def command(self) -> tuple[Any, ...]:
        """Return the command as sent: ``FCALL name numkeys keys... args...``."""
        verb = "FCALL_RO" if self.read_only else "FCALL"
        return (verb, self.function, len(self.keys), *self.keys, *self.args)


class _Plain(Call[T]):
    """A plain command on one key (``function`` is the command's name)."""

    __slots__ = ()

    def command(self) -> tuple[Any, ...]:
        return (self.function, *self.keys, *self.args)


# -- sending ------------------------------------------------------------------


def _send(client: Any, call: Call[Any]) -> Any:
    command = call.command()
    if is_cluster(client):
        # Naming the node skips redis-py's COMMAND GETKEYS round trip.
        node = client.get_node_from_key(call.keys[0])
        return client.execute_command(*command, target_nodes=node)
    if getattr(client, "connection_pool", None) is None:
        return client.execute_command(*command)  # a client of another kind, from CONNECTION_FACTORY
    return exchange(client, (command,))[0]


async def _asend(client: Any, call: Call[Any]) -> Any:
    command = call.command()
    if is_cluster(client):
        try:
            await client.initialize()  # a no-op once done
            node = client.get_node_from_key(call.keys[0])
            return await client.execute_command(*command, target_nodes=node)
        except (TypeError, AttributeError) as exc:
            if not transport_gone(exc):
                raise
            raise rexc.ConnectionError(f"connection lost ({exc})") from exc
    if getattr(client, "connection_pool", None) is None:
        return await client.execute_command(*command)
    return (await aexchange(client, (command,)))[0]


def _missing(exc: rexc.ResponseError) -> None:
    if not is_missing(exc):
        raise exc
    if not charon_settings.LOAD_FUNCTIONS:
        raise missing_error() from exc


def run(client: SyncClient, call: Call[T]) -> T:
    """Send ``call``; load the library and send it again if Redis lacks it."""
    try:
        try:
            reply = _send(client, call)
        except rexc.ResponseError as exc:
            _missing(exc)
            load_library(client)
            reply = _send(client, call)
    except REDIS_ERRORS as exc:
        raise translate(exc) from exc
    return call.parse(reply)


async def arun(client: AsyncClient, call: Call[T]) -> T:
    """Async twin of :func:`run`."""
    try:
        try:
            reply = await _asend(client, call)
        except rexc.ResponseError as exc:
            _missing(exc)
            await aload_library(client)
            reply = await _asend(client, call)
    except REDIS_ERRORS as exc:
        raise translate(exc) from exc
    return call.parse(reply)


def load_library(client: SyncClient) -> None:
    """Load the library on every primary (replacing an identical copy)."""
    try:
        client.function_load(SOURCE, replace=True)
    except REDIS_ERRORS as exc:
        raise translate(exc) from exc


async def aload_library(client: AsyncClient) -> None:
    """Async twin of :func:`load_library`."""
    try:
        await client.function_load(SOURCE, replace=True)
    except REDIS_ERRORS as exc:
        raise translate(exc) from exc


# -- replies ------------------------------------------------------------------


def _bytes_or_none(reply: Any) -> bytes | None:
    return None if reply is None else bytes(reply)


def _code_or_record(reply: Any) -> int | bytes:
    return reply if isinstance(reply, int) else bytes(reply)


def _list(reply: Any) -> Sequence[bytes]:
    return [r if isinstance(r, bytes) else str(r).encode() for r in reply]


def _ints(reply: Any) -> list[int]:
    return [int(r) for r in reply]


def _value(reply: Any) -> bytes | None:
    return reply.encode() if isinstance(reply, str) else reply


# -- plain commands ---------------------------------------------------------------


def get(client: SyncClient, key: str) -> bytes | None:
    """GET ``key`` (no function call: a key that names where a session is)."""
    return run(client, _Plain("GET", (key,), (), _value))


async def aget(client: AsyncClient, key: str) -> bytes | None:
    """Async twin of :func:`get`."""
    return await arun(client, _Plain("GET", (key,), (), _value))


# -- one stub per function ------------------------------------------------------

LOAD = function_name("load")
EXISTS = function_name("exists")
CREATE = function_name("create")
SAVE = function_name("save")
CYCLE = function_name("cycle")
DELETE = function_name("delete")
LIST = function_name("list")
END_ONE = function_name("end_one")
END_ALL = function_name("end_all")
STATS = function_name("stats")
ACTIVITY = function_name("activity")
PURGE = function_name("purge")
SWEEP = function_name("sweep")
IMPORT = function_name("import")
RETRACT = function_name("retract")


def _activity(index: str, on: bool) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """Return the activity sets (KEYS) and windows (ARGV) a call appends, when ``on``."""
    if not on:
        return (), ()
    return activity_keys(index), (ACTIVITY_WINDOW_MS, USERS_WINDOW_MS)


def load(keys: Keys, touch: int, absolute: int, facts: str, activity: bool) -> Call[bytes | None]:
    """Read a live session's record; update "last seen" at most every ``touch`` s.

    With ``activity``, that update also notes the session in its slot's activity sets.
    """
    sets, windows = _activity(keys.index, activity)
    return Call(
        LOAD, (keys.record, keys.index, keys.meta, *sets),
        (keys.member, touch, absolute, facts, *windows),
        _bytes_or_none,
    )  # fmt: skip


def exists(keys: Keys) -> Call[bool]:
    """Tell whether a session is alive."""
    return Call(EXISTS, (keys.record, keys.index), (keys.member,), bool, read_only=True)


def create(
    keys: Keys,
    ttl_ms: int,
    user: str | None,
    created: int,
    record: bytes,
    facts: str,
    absolute: int,
    limit: int,
    activity: bool,
) -> Call[int]:
    """Write a new record (never over an existing one), indexed if signed in.

    With ``activity``, a signed-in session is noted in its slot's activity sets.
    """
    sets, windows = _activity(keys.index, activity)
    return Call(
        CREATE,
        (keys.record, keys.index, keys.meta, keys.ended, *sets),
        (
            *(keys.member, ttl_ms, user or "", created, record, facts, absolute, limit),
            *windows,
        ),
        int,
    )


def save(
    keys: Keys, version: int, ttl_ms: int, user: str | None, record: bytes, absolute: int
) -> Call[int | bytes]:
    """Replace a live record of ``version`` by ``record`` (empty: only move its expiry)."""
    return Call(
        SAVE,
        (keys.record, keys.index, keys.meta),
        (keys.member, version, ttl_ms, user or "", record, absolute),
        _code_or_record,
    )


def cycle(
    old: Keys,
    new: Keys,
    version: int,
    ttl_ms: int,
    user: str | None,
    record: bytes,
    absolute: int,
    activity: bool,
) -> Call[int | bytes]:
    """Move a live record of ``version`` to a new key in the same slot."""
    sets, windows = _activity(old.index, activity)
    return Call(
        CYCLE,
        (old.record, new.record, old.index, old.meta, *sets),
        (
            *(old.member, new.member, version, ttl_ms, user or "", record, absolute),
            *windows,
        ),
        _code_or_record,
    )


def delete(keys: Keys, version: int | None = None) -> Call[int | bytes]:
    """Delete a session; with ``version``, only that version of a live one."""
    args = (keys.member, "" if version is None else version)
    return Call(DELETE, (keys.record, keys.index, keys.meta), args, _code_or_record)


def list_user(keys: UserKeys) -> Call[Sequence[bytes]]:
    """List a user's live sessions: member, expiry (ms), metadata, ..."""
    return Call(LIST, (keys.index, keys.meta), (), _list, read_only=True)


def end_one(keys: UserKeys, member: str) -> Call[bool]:
    """End one session of a user (a member of another user's index is untouched)."""
    return Call(END_ONE, (keys.record(member), keys.index, keys.meta), (member,), bool)


def end_all(keys: UserKeys, keep: str | None = None) -> Call[int]:
    """End every session of a user but ``keep``; reply how many live ones ended."""
    return Call(END_ALL, (keys.index, keys.meta, keys.ended), (keep or "",), int)


def stats(keys: UserKeys, since: int) -> Call[list[int]]:
    """Count a user's live sessions and those seen since ``since`` (unix s)."""
    return Call(STATS, (keys.index, keys.meta), (since,), _ints, read_only=True)


def activity(keys: tuple[str, str], since: Sequence[int]) -> Call[list[int]]:
    """Count a slot's sessions, then users, seen since each moment of ``since`` (unix ms)."""
    return Call(ACTIVITY, keys, tuple(since), _ints, read_only=True)


def purge(keys: UserKeys, members: Sequence[str]) -> Call[int]:
    """Delete the records of ended sessions and drop them from the ended set."""
    records = [keys.record(m) for m in members]
    return Call(PURGE, (keys.ended, *records), tuple(members), int)


def sweep(keys: UserKeys, members: Sequence[str], dry_run: bool) -> Call[list[int]]:
    """Drop index entries that expired or whose record vanished: expired, vanished, live."""
    records = [keys.record(m) for m in members]
    args = ("1" if dry_run else "0", *members)
    return Call(SWEEP, (keys.index, keys.meta, *records), args, _ints)


def import_session(
    keys: Keys,
    ledger: str,
    ttl_ms: int,
    user: str | None,
    created: int,
    record: bytes,
    absolute: int,
    keep_ms: int,
) -> Call[int]:
    """Write an imported session unless a live copy is there or it was imported and is gone.

    Reply 1 imported, 0 a live copy is there, -1 refused (ended, moved or
    expired since an earlier pass), -2 its absolute lifetime is over.
    """
    return Call(
        IMPORT,
        (keys.record, keys.index, keys.meta, keys.ended, ledger),
        (keys.member, ttl_ms, user or "", created, record, absolute, keep_ms),
        int,
    )


def retract(keys: Keys, ledger: str) -> Call[int]:
    """Delete an imported copy whose source row is gone, if the engine never rewrote it.

    Reply 1 deleted, 0 no live copy, 2 kept (rewritten since), 3 kept (its
    source expiry passed), -1 not imported there.
    """
    return Call(RETRACT, (keys.record, keys.index, keys.meta, ledger), (keys.member,), int)
