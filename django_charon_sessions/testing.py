"""Helpers for a site's own tests.

Parallel test runs need nothing: each worker of ``manage.py test --parallel``
or pytest-xdist gets its own ``KEY_PREFIX`` (see :func:`.conf.parallel_test_worker`),
so workers whose databases all number their users from 1 do not share
per-user indexes. What the tests of one worker leave in Redis stays there,
as with Django's cache; :func:`clear_sessions` removes it between tests.
"""

from __future__ import annotations

from . import batches
from .client import get_client
from .conf import parallel_test_worker
from .errors import translated
from .keyspace import key_prefix, slot_keys_pattern

__all__ = ["clear_sessions", "parallel_test_worker"]

#: Keys deleted per command.
BATCH = 500


def clear_sessions() -> int:
    """Delete every session, index and metadata key under this process's ``KEY_PREFIX``.

    Only the keys of this test worker go (another worker's prefix has its own
    suffix). Meant for a test's ``setUp()``; it scans the keyspace, so never
    call it in production. Return how many keys were deleted.
    """
    client = get_client()
    deleted = 0
    # The brace of "P:{tag}..." keeps a prefix from matching the longer
    # prefixes of the workers of a parallel run.
    for names in batches.scan(client, slot_keys_pattern(key_prefix()), BATCH, kind=None):
        with translated():
            # On a Cluster redis-py splits a multi-key DELETE by slot.
            deleted += int(client.delete(*names))
    return deleted
