"""An in-process fake Redis (fakeredis) for the demo and the fast tests.

``CONNECTION_FACTORY = "testproject.fake.connection"`` makes the engine use
it; sync and async clients share one fake server per process.
"""

from __future__ import annotations

from typing import Any

import fakeredis

SERVER = fakeredis.FakeServer(version=(7, 2))


def connection(is_async: bool) -> Any:
    if is_async:
        return fakeredis.FakeAsyncRedis(server=SERVER)
    return fakeredis.FakeRedis(server=SERVER)
