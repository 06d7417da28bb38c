"""Measurements, each returning plain numbers: requests, store operations, memory.

Everything runs in this process against the Redis server and SQLite file
that :mod:`benchmarks.run` set up. Times are medians over repetitions of the
mean over a batch of operations, in microseconds.
"""

from __future__ import annotations

import io
import pickle
import statistics
import sys
import time
import uuid
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.test import override_settings
from django.utils.module_loading import import_module

from benchmarks.engines import ENGINES, Engine

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

#: What a typical signed-in visitor's session holds besides the login.
DATA = {"theme": "dark", "cart": [1021, 2210, 97], "visits": 12, "lang": "en"}
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
BACKEND = "django.contrib.auth.backends.ModelBackend"


@contextmanager
def engine_settings(engine: Engine) -> Iterator[None]:
    with override_settings(
        SESSION_ENGINE=engine.module,
        SESSION_CACHE_ALIAS=engine.cache_alias,
        MIDDLEWARE=engine.middleware,
    ):
        yield


def store_class(engine: Engine) -> Any:
    return import_module(engine.module).SessionStore


def timed(batch: Callable[[], int], reps: int) -> float:
    """Run ``batch`` (which returns how many operations it did) ``reps`` times.

    Return the median time per operation in microseconds.
    """
    batch()  # warm up: connections, function library, caches
    per_op = []
    for _ in range(reps):
        started = time.perf_counter()
        n = batch()
        per_op.append((time.perf_counter() - started) / n * 1e6)
    return statistics.median(per_op)


def auth_data(user: Any) -> dict[str, Any]:
    return {
        SESSION_KEY: str(user.pk),
        BACKEND_SESSION_KEY: BACKEND,
        HASH_SESSION_KEY: user.get_session_auth_hash(),
    }


def make_sessions(engine: Engine, count: int, user: Any | None) -> list[str]:
    """Create ``count`` sessions through the engine; signed in as ``user`` if given."""
    store = store_class(engine)
    keys = []
    for _ in range(count):
        s = store()
        s.update(DATA)
        if user is not None:
            s.update(auth_data(user))
        s.save()
        keys.append(s.session_key)
    return keys


# -- requests through Django's WSGI handler --------------------------------------


def environ(path: str, session_key: str) -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "SERVER_NAME": "bench.test",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr,
        "REMOTE_ADDR": "203.0.113.7",
        "HTTP_USER_AGENT": USER_AGENT,
        "HTTP_COOKIE": f"{settings.SESSION_COOKIE_NAME}={session_key}",
    }


def _start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    if not status.startswith("200"):
        raise AssertionError(f"benchmark page answered {status}")
    return None


def run_requests(handler: Any, environs: list[dict[str, Any]]) -> int:
    for env in environs:
        env["wsgi.input"].seek(0)
        response = handler(env, _start_response)
        b"".join(response)
        response.close()
    return len(environs)


def request_level(user: Any, reps: int, sessions: int = 200) -> dict[str, dict[str, float]]:
    """Time a read-only and a read-modify-write signed-in request per engine."""
    from django.core.handlers.wsgi import WSGIHandler

    out: dict[str, dict[str, float]] = {}
    for engine in ENGINES.values():
        with engine_settings(engine):
            handler = WSGIHandler()
            keys = make_sessions(engine, sessions, user)
            reads = [environ("/read/", k) for k in keys]
            writes = [environ("/write/", k) for k in keys]
            out[engine.name] = {
                "read": timed(lambda h=handler, e=reads: run_requests(h, e), reps),
                "rmw": timed(lambda h=handler, e=writes: run_requests(h, e), reps),
            }
    return out


def login_level(user: Any, reps: int, per_rep: int = 300) -> dict[str, float]:
    """Time a login: an anonymous session with data becomes the user's (store level)."""
    out: dict[str, float] = {}
    for engine in ENGINES.values():
        with engine_settings(engine):
            store = store_class(engine)
            pools = [make_sessions(engine, per_rep, None) for _ in range(reps + 1)]

            def batch(pools: list[list[str]] = pools, store: Any = store) -> int:
                keys = pools.pop()
                for key in keys:
                    s = store(key)
                    s.get("cart")
                    s.cycle_key()  # what django.contrib.auth.login() does
                    s.update(auth_data(user))
                    s.save()
                return len(keys)

            out[engine.name] = timed(batch, reps)
    return out


# -- store operations at a size ------------------------------------------------


def store_ops(engine: Engine, user: Any, reps: int, sessions: int = 200) -> dict[str, float]:
    """Time a load and a read-modify-write save of signed-in sessions, store level."""
    with engine_settings(engine):
        store = store_class(engine)
        keys = make_sessions(engine, sessions, user)

        def read() -> int:
            for key in keys:
                store(key).load()
            return len(keys)

        def rmw() -> int:
            for key in keys:
                s = store(key)
                s["visits"] = s.get("visits", 0) + 1
                s.save()
            return len(keys)

        return {"read": timed(read, reps), "rmw": timed(rmw, reps)}


def floor_ops(reps: int, sessions: int = 200) -> dict[str, float]:
    """The floor by hand: redis-py GET + unpickle, and GET + SET of a pickled dict."""
    import redis

    r = redis.Redis.from_url(settings.BENCH_FLOOR_URL)
    keys = [f"bare:{uuid.uuid4().hex}" for _ in range(sessions)]
    for key in keys:
        r.set(key, pickle.dumps({**DATA, "_auth_user_id": "1"}), ex=1209600)

    def read() -> int:
        for key in keys:
            pickle.loads(r.get(key))  # type: ignore[arg-type]
        return len(keys)

    def rmw() -> int:
        for key in keys:
            d = pickle.loads(r.get(key))  # type: ignore[arg-type]
            d["visits"] += 1
            r.set(key, pickle.dumps(d), ex=1209600)
        return len(keys)

    return {"read": timed(read, reps), "rmw": timed(rmw, reps)}
