"""One typed caller per Redis function, and the lean path that sends them.

Each function of the Lua library has exactly one stub here: the only code
that knows its ``KEYS`` and ``ARGV`` order. A stub returns a :class:`Call`;
:func:`run` sends it on a sync client and :func:`arun` on an async one, so
the engine, the api, cleanup and the importer share one path per function.

On a standalone server a call takes a connection from the client's pool,
sends the packed command and reads the reply itself: redis-py's generic
command path (retries, hooks, response callbacks) costs several
microseconds per call that a session store pays on every request. The pool
still guards against forks and replaces a connection that died while idle.
On a Cluster the call names the node of its key's slot and lets redis-py's
cluster client follow ``MOVED``/``ASK`` and topology changes.

Nothing is retried once it was sent: a write that timed out may have been
applied (see docs/design.md). Only "function not found" loads the library and
sends the call once more, since nothing ran.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import redis
import redis.exceptions as rexc

from . import functions as fn
from .client import is_cluster
from .conf import charon_settings

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from .client import AsyncClient, SyncClient
    from .keyspace import Keys, UserKeys

T = TypeVar("T")

# hiredis is optional; imported by name so type checking needs no stubs for it.
try:
    _hiredis_pack: Any = importlib.import_module("hiredis").pack_command
except ImportError:  # pragma: no cover - tested without hiredis in CI's lint env only
    _hiredis_pack = None

# redis-py before 5.3 wants a command name in get_connection().
_NAME_ARGS: tuple[str, ...] = (
    ("FCALL",) if tuple(int(p) for p in redis.__version__.split(".")[:2]) < (5, 3) else ()
)


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


# -- sending ------------------------------------------------------------------


def _pack(conn: Any, command: tuple[Any, ...]) -> Any:
    # hiredis packs the whole command in C; redis-py's own packer (also what
    # its hiredis serializer does first) looks at every argument in Python.
    if _hiredis_pack is not None:
        return [_hiredis_pack(command)]
    return conn.pack_command(*command)


def _send(client: Any, call: Call[Any]) -> Any:
    command = call.command()
    if is_cluster(client):
        # Naming the node skips redis-py's COMMAND GETKEYS round trip.
        node = client.get_node_from_key(call.keys[0])
        return client.execute_command(*command, target_nodes=node)
    pool = getattr(client, "connection_pool", None)
    if pool is None:  # a client of another kind, from CONNECTION_FACTORY
        return client.execute_command(*command)
    conn = pool.get_connection(*_NAME_ARGS)
    try:
        conn.send_packed_command(_pack(conn, command), check_health=False)
        return conn.read_response()
    except rexc.ResponseError:
        raise  # an error reply was read whole: the connection is in step
    except BaseException:
        conn.disconnect()  # a reply may be left unread
        raise
    finally:
        pool.release(conn)


async def _asend(client: Any, call: Call[Any]) -> Any:
    command = call.command()
    if is_cluster(client):
        try:
            await client.initialize()  # a no-op once done
            node = client.get_node_from_key(call.keys[0])
            return await client.execute_command(*command, target_nodes=node)
        except (TypeError, AttributeError) as exc:
            if not _transport_gone(exc):
                raise
            raise rexc.ConnectionError(f"connection lost ({exc})") from exc
    pool = getattr(client, "connection_pool", None)
    if pool is None:
        return await client.execute_command(*command)
    try:
        conn = await pool.get_connection(*_NAME_ARGS)
    except (TypeError, AttributeError) as exc:
        if not _transport_gone(exc):
            raise
        raise rexc.ConnectionError(f"connection lost while connecting ({exc})") from exc
    try:
        await conn.send_packed_command(_pack(conn, command), check_health=False)
        return await conn.read_response()
    except rexc.ResponseError:
        raise
    except (TypeError, AttributeError) as exc:
        await conn.disconnect()
        if not _transport_gone(exc):
            raise
        raise rexc.ConnectionError(f"connection lost while sending ({exc})") from exc
    except BaseException:  # including cancellation: a reply may be left unread
        await conn.disconnect()
        raise
    finally:
        await pool.release(conn)


def _transport_gone(exc: Exception) -> bool:
    # redis-py's asyncio connection fails this way (older releases more often)
    # when the server goes away while it connects or writes: its transport is
    # already gone (None). That is a lost connection, nothing else.
    return "'NoneType' object" in str(exc)


def _missing(exc: rexc.ResponseError) -> None:
    if not fn.is_missing(exc):
        raise exc
    if not charon_settings.LOAD_FUNCTIONS:
        raise fn.missing_error() from exc


def run(client: SyncClient, call: Call[T]) -> T:
    """Send ``call``; load the library and send it again if Redis lacks it."""
    try:
        try:
            reply = _send(client, call)
        except rexc.ResponseError as exc:
            _missing(exc)
            fn.load_library(client)
            reply = _send(client, call)
    except rexc.RedisError as exc:
        raise fn.translate(exc) from exc
    return call.parse(reply)


async def arun(client: AsyncClient, call: Call[T]) -> T:
    """Async twin of :func:`run`."""
    try:
        try:
            reply = await _asend(client, call)
        except rexc.ResponseError as exc:
            _missing(exc)
            await fn.aload_library(client)
            reply = await _asend(client, call)
    except rexc.RedisError as exc:
        raise fn.translate(exc) from exc
    return call.parse(reply)


# -- replies ------------------------------------------------------------------


def _bytes_or_none(reply: Any) -> bytes | None:
    return None if reply is None else bytes(reply)


def _code_or_record(reply: Any) -> int | bytes:
    return reply if isinstance(reply, int) else bytes(reply)


def _list(reply: Any) -> Sequence[bytes]:
    return [r if isinstance(r, bytes) else str(r).encode() for r in reply]


def _ints(reply: Any) -> list[int]:
    return [int(r) for r in reply]


# -- one stub per function ------------------------------------------------------

LOAD = fn.function_name("load")
EXISTS = fn.function_name("exists")
CREATE = fn.function_name("create")
SAVE = fn.function_name("save")
CYCLE = fn.function_name("cycle")
DELETE = fn.function_name("delete")
LIST = fn.function_name("list")
END_ONE = fn.function_name("end_one")
END_ALL = fn.function_name("end_all")
STATS = fn.function_name("stats")
PURGE = fn.function_name("purge")
SWEEP = fn.function_name("sweep")
IMPORT = fn.function_name("import")
RETRACT = fn.function_name("retract")


def load(keys: Keys, touch: int, absolute: int, facts: str) -> Call[bytes | None]:
    """Read a live session's record; update "last seen" at most every ``touch`` s."""
    return Call(
        LOAD, (keys.record, keys.index, keys.meta), (keys.member, touch, absolute, facts),
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
) -> Call[int]:
    """Write a new record (never over an existing one), indexed if signed in."""
    return Call(
        CREATE,
        (keys.record, keys.index, keys.meta, keys.ended),
        (keys.member, ttl_ms, user or "", created, record, facts, absolute, limit),
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
) -> Call[int | bytes]:
    """Move a live record of ``version`` to a new key in the same slot."""
    return Call(
        CYCLE,
        (old.record, new.record, old.index, old.meta),
        (old.member, new.member, version, ttl_ms, user or "", record, absolute),
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
