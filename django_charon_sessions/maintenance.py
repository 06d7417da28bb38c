"""Housekeeping over all users: what ``clear_expired`` runs.

Redis expires sessions by itself and every write prunes its user's index, so
nothing here is needed for correctness. It removes expired entries from
indexes nobody wrote to lately, and deletes the hashes of ended sessions
(which are dead already) so their memory comes back before their TTL.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import RedisError

from . import functions as fn
from .client import get_async_client, get_client
from .conf import charon_settings

#: The prune function removes at most this many entries per call.
PRUNE_LIMIT = 64
SCAN_COUNT = 1000
PURGE_BATCH = 500


def _pattern(kind: str) -> str:
    return f"{charon_settings.KEY_PREFIX}:{{*}}:{kind}"


def _name(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


def _purge_call(ended: str, members: list[bytes]) -> tuple[list[str], list[str]]:
    base = ended[:-1]  # "P:{T}:" of "P:{T}:x"
    names = [_name(m) for m in members]
    return [ended, *(base + "s:" + m for m in names)], names


def prune_indexes() -> int:
    """Remove expired index entries and ended sessions' hashes; return how many."""
    client: Any = get_client()
    removed = 0
    try:
        for raw in client.scan_iter(match=_pattern("i"), count=SCAN_COUNT, _type="zset"):
            index = _name(raw)
            while (n := int(fn.fcall(client, fn.PRUNE, [index, index[:-1] + "m"], []))) > 0:
                removed += n
                if n < PRUNE_LIMIT:
                    break
        for raw in client.scan_iter(match=_pattern("x"), count=SCAN_COUNT, _type="zset"):
            ended = _name(raw)
            while members := client.zrange(ended, 0, PURGE_BATCH - 1):
                removed += int(fn.fcall(client, fn.PURGE, *_purge_call(ended, members)))
    except RedisError as exc:
        raise fn.translate(exc) from exc
    return removed


async def aprune_indexes() -> int:
    """Async twin of :func:`prune_indexes`."""
    client: Any = get_async_client()
    removed = 0
    try:
        async for raw in client.scan_iter(match=_pattern("i"), count=SCAN_COUNT, _type="zset"):
            index = _name(raw)
            while (n := int(await fn.afcall(client, fn.PRUNE, [index, index[:-1] + "m"], []))) > 0:
                removed += n
                if n < PRUNE_LIMIT:
                    break
        async for raw in client.scan_iter(match=_pattern("x"), count=SCAN_COUNT, _type="zset"):
            ended = _name(raw)
            while members := await client.zrange(ended, 0, PURGE_BATCH - 1):
                removed += int(await fn.afcall(client, fn.PURGE, *_purge_call(ended, members)))
    except RedisError as exc:
        raise fn.translate(exc) from exc
    return removed
