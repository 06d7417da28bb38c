"""Helpers for a site's own tests.

Parallel test runs need nothing: each worker of ``manage.py test --parallel``
or pytest-xdist gets its own ``KEY_PREFIX`` (see :func:`.conf.parallel_test_worker`),
so workers whose databases all number their users from 1 do not share
per-user indexes. What the tests of one worker leave in Redis stays there,
as with Django's cache; :func:`clear_sessions` removes it between tests.
"""

from __future__ import annotations

from typing import Any

from redis.exceptions import RedisError

from . import functions as fn
from .client import get_client
from .conf import charon_settings, parallel_test_worker

__all__ = ["clear_sessions", "parallel_test_worker"]

#: Keys deleted per command.
BATCH = 500


def clear_sessions() -> int:
    """Delete every session, index and metadata key under this process's ``KEY_PREFIX``.

    Only the keys of this test worker go (another worker's prefix has its own
    suffix). Meant for a test's ``setUp()``; it scans the keyspace, so never
    call it in production. Return how many keys were deleted.
    """
    client: Any = get_client()
    # Every key of the engine is "P:{tag}...", so the brace keeps a prefix
    # from matching the longer prefixes of the workers of a parallel run.
    pattern = f"{charon_settings.KEY_PREFIX}:{{*"
    deleted = 0
    batch: list[Any] = []
    try:
        for key in client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= BATCH:
                deleted += _delete(client, batch)
        if batch:
            deleted += _delete(client, batch)
    except RedisError as exc:
        raise fn.translate(exc) from exc
    return deleted


def _delete(client: Any, batch: list[Any]) -> int:
    # On a Cluster redis-py splits a multi-key DELETE by slot.
    count = int(client.delete(*batch))
    batch.clear()
    return count
