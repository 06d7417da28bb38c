"""Many commands in few round trips: what cleanup and the importer send.

A *batch* is a list of commands: function calls (``Call.command()``) and
plain commands on one key. On a standalone server it goes in one write and
its replies are read in one go (:func:`.client.exchange`), several times
cheaper than redis-py's pipeline for thousands of small commands. On a
Cluster the batch is split by the node that serves each command's key, one
write per node. Replies come back in the order of the commands.

Work that needs batches in turn (list, then decide, then write) is written
once, as a *plan*: a generator that yields each batch and is sent its
replies. :func:`run` drives a plan on the sync client and :func:`arun` on the
async one, so a sync command and its async twin share every decision.

A batch cannot load the library on demand, as a single call does: callers
load it first (:func:`prepare`). If it vanishes during a run, :func:`send`
raises :class:`~.errors.LibraryMissing`; everything sent in batches is
idempotent, so the caller loads it and runs again. Every other Redis error
becomes the documented exception (:mod:`.errors`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from . import calls
from .client import Command, aexchange, exchange, is_cluster
from .conf import charon_settings
from .errors import (
    REDIS_ERRORS,
    LibraryMissing,
    describe_target,
    is_missing,
    missing_error,
    translate,
    translated,
)
from .library import LIBRARY

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterable, Iterator, Sequence

    from .client import AsyncClient, SyncClient

T = TypeVar("T")

#: Yields batches, is sent each batch's replies, returns its result.
Plan = Generator[list[Command], list[Any], T]

#: Plans :func:`run_all` keeps in flight: one is packed or read here while
#: Redis works on the other. More would only queue behind Redis's one thread.
IN_FLIGHT = 2

_FUNCTION_VERBS = frozenset({"FCALL", "FCALL_RO"})


def _key_of(command: Command) -> str:
    # FCALL name numkeys key...: every key of a call shares one slot.
    return str(command[3] if command[0] in _FUNCTION_VERBS else command[1])


def _reraise_missing(exc: Exception) -> None:
    if not is_missing(exc):
        return
    if not charon_settings.LOAD_FUNCTIONS:
        raise missing_error() from exc
    raise LibraryMissing(
        f"The Redis function library {LIBRARY} vanished from {describe_target()} while "
        "a batch ran; run again."
    ) from exc


def _pipelined(client: Any, commands: Sequence[Command]) -> Any:
    pipe = client.pipeline(transaction=False)
    for command in commands:
        pipe.execute_command(*command)
    return pipe.execute()


def _by_node(client: Any, commands: Sequence[Command]) -> list[tuple[Any, list[int]]]:
    """Return each Cluster node's client and the positions of its commands."""
    groups: dict[str, tuple[Any, list[int]]] = {}
    for n, command in enumerate(commands):
        node = client.get_node_from_key(_key_of(command))
        groups.setdefault(node.name, (node, []))[1].append(n)
    return [(client.get_redis_connection(node), positions) for node, positions in groups.values()]


def _send(client: Any, commands: Sequence[Command]) -> list[Any]:
    if not is_cluster(client):
        if getattr(client, "connection_pool", None) is None:
            return list(_pipelined(client, commands))  # a client from CONNECTION_FACTORY
        return exchange(client, commands)
    replies: list[Any] = [None] * len(commands)
    for node_client, positions in _by_node(client, commands):
        got = exchange(node_client, [commands[n] for n in positions])
        for n, reply in zip(positions, got, strict=True):
            replies[n] = reply
    return replies


def send(client: SyncClient, commands: Sequence[Command]) -> list[Any]:
    """Send a batch, per node on a Cluster; return the replies in order.

    Replies are Redis's own (``b"OK"``, a flat ``WITHSCORES`` list) except
    where a client without a pool needs redis-py's pipeline, which parses them.

    Raise the documented exception for a Redis error, and
    :class:`~.errors.LibraryMissing` if the library vanished.
    """
    if not commands:
        return []
    try:
        return _send(client, commands)
    except REDIS_ERRORS as exc:
        _reraise_missing(exc)
        raise translate(exc) from exc


async def asend(client: AsyncClient, commands: Sequence[Command]) -> list[Any]:
    """Async twin of :func:`send`.

    On a Cluster, redis-py's pipeline splits the batch by node (and parses
    replies: read only those that are the same either way, as cleanup does).
    """
    if not commands:
        return []
    target: Any = client
    try:
        if is_cluster(target) or getattr(target, "connection_pool", None) is None:
            return list(await _pipelined(target, commands))
        return await aexchange(target, commands)
    except REDIS_ERRORS as exc:
        _reraise_missing(exc)
        raise translate(exc) from exc


def run(client: SyncClient, plan: Plan[T]) -> T:
    """Drive ``plan`` on the sync client; return what it returns."""
    try:
        batch = next(plan)
        while True:
            batch = plan.send(send(client, batch))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def arun(client: AsyncClient, plan: Plan[T]) -> T:
    """Drive ``plan`` on the event loop's async client."""
    try:
        batch = next(plan)
        while True:
            batch = plan.send(await asend(client, batch))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def run_all(client: SyncClient, plans: Iterable[Plan[T]]) -> Iterator[T]:
    """Drive ``plans``, :data:`IN_FLIGHT` at a time; yield their results in order."""
    with ThreadPoolExecutor(max_workers=IN_FLIGHT) as pool:
        pending: deque[Future[T]] = deque()
        for plan in plans:
            pending.append(pool.submit(run, client, plan))
            if len(pending) == IN_FLIGHT:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def prepare(client: SyncClient) -> None:
    """Load the library ahead of a run's batches, unless an operator loads it."""
    if charon_settings.LOAD_FUNCTIONS:
        calls.load_library(client)


async def aprepare(client: AsyncClient) -> None:
    """Async twin of :func:`prepare`."""
    if charon_settings.LOAD_FUNCTIONS:
        await calls.aload_library(client)


class _Names:
    """Key names found by ``SCAN``, handed out ``size`` at a time."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.rest: list[str] = []

    def add(self, raw: Any) -> list[str] | None:
        """Keep one name; return a full batch when there is one."""
        self.rest.append(raw.decode() if isinstance(raw, bytes) else str(raw))
        if len(self.rest) < self.size:
            return None
        full, self.rest = self.rest, []
        return full


def scan(
    client: SyncClient, pattern: str, size: int, *, kind: str | None = "zset"
) -> Iterator[list[str]]:
    """Yield the names of the keys matching ``pattern`` (of type ``kind``), ``size`` at a time.

    ``SCAN``, never ``KEYS``: on a Cluster, every primary in turn.
    """
    names = _Names(size)
    with translated():
        for raw in client.scan_iter(match=pattern, count=size, _type=kind):
            if full := names.add(raw):
                yield full
    if names.rest:
        yield names.rest


async def ascan(
    client: AsyncClient, pattern: str, size: int, *, kind: str | None = "zset"
) -> AsyncIterator[list[str]]:
    """Async twin of :func:`scan`."""
    names = _Names(size)
    with translated():
        async for raw in client.scan_iter(match=pattern, count=size, _type=kind):
            if full := names.add(raw):
                yield full
    if names.rest:
        yield names.rest
