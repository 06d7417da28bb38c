"""The floor: a session engine that is a bare redis-py GET and SET of a pickled dict.

No signing, no per-user index, no atomicity beyond one SET: the least any
Redis session engine can do. The benchmarks measure the other engines
against it.
"""

from __future__ import annotations

import pickle
from functools import lru_cache
from typing import Any

import redis
from django.conf import settings
from django.contrib.sessions.backends.base import CreateError, SessionBase

PREFIX = "floor:"


@lru_cache(maxsize=1)
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=1.0)


class SessionStore(SessionBase):
    @property
    def _r(self) -> redis.Redis:
        return _client(settings.BENCH_FLOOR_URL)

    def load(self) -> dict[str, Any]:
        raw = self._r.get(PREFIX + self.session_key) if self.session_key else None
        if raw is None:
            self._session_key = None
            return {}
        data: dict[str, Any] = pickle.loads(raw)
        return data

    def exists(self, session_key: str | None) -> bool:
        return bool(session_key) and bool(self._r.exists(PREFIX + str(session_key)))

    def create(self) -> None:
        while True:
            self._session_key = self._get_new_session_key()
            try:
                self.save(must_create=True)
            except CreateError:
                continue
            self.modified = True
            return

    def save(self, must_create: bool = False) -> None:
        if self.session_key is None:
            return self.create()
        data = pickle.dumps(self._get_session(no_load=must_create))
        done = self._r.set(
            PREFIX + self.session_key, data, ex=self.get_expiry_age(), nx=must_create
        )
        if must_create and not done:
            raise CreateError
        return None

    def delete(self, session_key: str | None = None) -> None:
        key = session_key or self.session_key
        if key:
            self._r.delete(PREFIX + key)

    @classmethod
    def clear_expired(cls) -> None:
        pass  # Redis TTLs
