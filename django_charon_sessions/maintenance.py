"""Housekeeping over all user indexes: what ``clear_expired`` runs."""

from __future__ import annotations

from redis.exceptions import RedisError

from . import functions as fn
from .client import get_async_client, get_client
from .conf import charon_settings

#: The prune function removes at most this many entries per call.
PRUNE_LIMIT = 64
SCAN_COUNT = 1000


def _index_pattern() -> str:
    return f"{charon_settings.KEY_PREFIX}:{{*}}:i"


def _meta_key(index_key: str) -> str:
    return index_key[:-1] + "m"


def prune_indexes() -> int:
    """Remove expired entries from every user index; return how many."""
    client = get_client()
    removed = 0
    try:
        keys = client.scan_iter(match=_index_pattern(), count=SCAN_COUNT, _type="zset")
        for raw in keys:
            index = raw.decode() if isinstance(raw, bytes) else str(raw)
            while True:
                n = int(fn.fcall(client, fn.PRUNE, [index, _meta_key(index)], []))
                removed += n
                if n < PRUNE_LIMIT:
                    break
    except RedisError as exc:
        raise fn.translate(exc) from exc
    return removed


async def aprune_indexes() -> int:
    """Async twin of :func:`prune_indexes`."""
    client = get_async_client()
    removed = 0
    try:
        keys = client.scan_iter(match=_index_pattern(), count=SCAN_COUNT, _type="zset")
        async for raw in keys:
            index = raw.decode() if isinstance(raw, bytes) else str(raw)
            while True:
                n = int(await fn.afcall(client, fn.PRUNE, [index, _meta_key(index)], []))
                removed += n
                if n < PRUNE_LIMIT:
                    break
    except RedisError as exc:
        raise fn.translate(exc) from exc
    return removed
