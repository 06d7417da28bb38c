"""Store level: the floor, this engine and Django's cache engine, interleaved in one run.

Three candidates on the same Redis server, with the same session data
(:data:`benchmarks.measure.DATA` plus Django's three auth keys):

- ``floor``: bare redis-py, ``GET`` + ``pickle.loads``, and ``GET`` + ``SET``
  (with ``ex=``) of a pickled dict: the least a Redis session store can do;
- ``charon``: :class:`django_charon_sessions.engine.SessionStore`, called directly;
- ``cache_django_redis``: Django's cache engine on django-redis.

Two operations: a read-only load of a signed-in session, and a
read-modify-write (load, ``s["visits"] += 1``, save). Each round runs one
batch of each candidate in turn for each operation (the order rotates from
round to round), so a drift of the machine's speed touches all three alike.

Each batch records its wall time per operation and its CPU per operation:
this process's ``time.process_time()`` plus the Redis server's
``used_cpu_sys + used_cpu_user`` (``INFO cpu``, read just before and just
after the batch). The server's figure is corrected for the part of the two
``INFO`` calls that falls inside the window (measured on empty windows) and
for what the idle server burns meanwhile (its cron). Figures are medians
over the rounds; a ratio is the median of the ratios within each round.
"""

from __future__ import annotations

import pickle
import statistics
import time
import uuid
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.test import override_settings

from benchmarks.engines import ENGINES
from benchmarks.measure import DATA, auth_data, engine_settings, make_sessions, store_class

if TYPE_CHECKING:
    from collections.abc import Callable

    import redis

CANDIDATES = ("floor", "charon", "cache_django_redis")
OPS = ("ro", "rw")
FIGURES = ("wall_us", "cpu_us", "client_cpu_us", "server_cpu_us")


def server_cpu(admin: redis.Redis) -> float:
    """Return the Redis server's CPU time so far (system + user), in seconds."""
    info = admin.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


def info_overhead(admin: redis.Redis, samples: int = 200) -> float:
    """Return the server CPU (s) two back-to-back ``INFO cpu`` calls put inside a window."""
    deltas = []
    for _ in range(samples):
        before = server_cpu(admin)
        deltas.append(server_cpu(admin) - before)
    return statistics.median(deltas)


def idle_rate(admin: redis.Redis, seconds: float = 1.0) -> float:
    """Return the server CPU (s) per second of an idle server: its cron, mostly."""
    before = server_cpu(admin)
    started = time.perf_counter()
    time.sleep(seconds)
    spent = server_cpu(admin) - before
    return max(spent / (time.perf_counter() - started), 0.0)


# -- the candidates ----------------------------------------------------------------


def _floor(session: dict[str, Any], count: int) -> dict[str, Callable[[], int]]:
    import redis

    r = redis.Redis.from_url(settings.BENCH_FLOOR_URL)
    age = settings.SESSION_COOKIE_AGE
    keys = [f"floor-store:{uuid.uuid4().hex}" for _ in range(count)]
    for key in keys:
        r.set(key, pickle.dumps(session), ex=age)

    def ro() -> int:
        for key in keys:
            pickle.loads(r.get(key))  # type: ignore[arg-type]
        return len(keys)

    def rw() -> int:
        for key in keys:
            d = pickle.loads(r.get(key))  # type: ignore[arg-type]
            d["visits"] += 1
            r.set(key, pickle.dumps(d), ex=age)
        return len(keys)

    def visits() -> int:
        return int(pickle.loads(r.get(keys[0]))["visits"])  # type: ignore[arg-type]

    return {"ro": ro, "rw": rw, "visits": visits}


def _engine(name: str, user: Any, count: int) -> dict[str, Callable[[], int]]:
    engine = ENGINES[name]
    with engine_settings(engine):
        keys = make_sessions(engine, count, user)
    store = store_class(engine)

    def ro() -> int:
        for key in keys:
            store(key)["visits"]
        return len(keys)

    def rw() -> int:
        for key in keys:
            s = store(key)
            s["visits"] += 1
            s.save()
        return len(keys)

    def visits() -> int:
        return int(store(keys[0])["visits"])

    return {"ro": ro, "rw": rw, "visits": visits}


# -- measuring ---------------------------------------------------------------------


def _batch(
    admin: redis.Redis, func: Callable[[], int], info_cost: float, idle: float
) -> dict[str, float]:
    """Run one batch; return its figures per operation, in microseconds."""
    server_before = server_cpu(admin)
    cpu_before = time.process_time()
    started = time.perf_counter()
    n = func()
    wall = time.perf_counter() - started
    client = time.process_time() - cpu_before
    server = server_cpu(admin) - server_before - info_cost - idle * wall
    return {
        "wall_us": wall / n * 1e6,
        "client_cpu_us": client / n * 1e6,
        "server_cpu_us": server / n * 1e6,
        "cpu_us": (client + server) / n * 1e6,
    }


def run(admin: redis.Redis, user: Any, rounds: int = 21, batch: int = 500) -> dict[str, Any]:
    """Measure the three candidates, interleaved; return medians, ratios and samples."""
    session = {**DATA, **auth_data(user)}
    # The cache engine reads its cache alias when a store is made: set it for
    # the whole run (the other two do not read it), so no batch switches settings.
    with override_settings(SESSION_CACHE_ALIAS=ENGINES["cache_django_redis"].cache_alias):
        candidates = {
            "floor": _floor(session, batch),
            "charon": _engine("charon", user, batch),
            "cache_django_redis": _engine("cache_django_redis", user, batch),
        }
        for funcs in candidates.values():  # warm up: connections, the function library
            funcs["ro"]()
            funcs["rw"]()
        info_cost = info_overhead(admin)
        idle = idle_rate(admin)
        samples: dict[str, dict[str, list[dict[str, float]]]] = {
            op: {name: [] for name in CANDIDATES} for op in OPS
        }
        for r in range(rounds):
            order = CANDIDATES[r % 3 :] + CANDIDATES[: r % 3]
            for op in OPS:
                for name in order:
                    samples[op][name].append(_batch(admin, candidates[name][op], info_cost, idle))
        # Every read-modify-write was saved: one per warm-up and per round.
        for name, funcs in candidates.items():
            seen = funcs["visits"]()
            assert seen == DATA["visits"] + 1 + rounds, (name, seen)
    return {
        "rounds": rounds,
        "batch": batch,
        "info_call_server_us": round(info_cost * 1e6, 2),
        "idle_server_us_per_s": round(idle * 1e6, 1),
        "ops": {
            op: {
                name: {f: round(statistics.median(s[f] for s in runs), 2) for f in FIGURES}
                for name, runs in per.items()
            }
            for op, per in samples.items()
        },
        "x_floor": {
            op: {
                name: _paired(samples[op][name], samples[op]["floor"])
                for name in CANDIDATES
                if name != "floor"
            }
            for op in OPS
        },
        # The cache engine's cost over this engine's: above 1, this engine is cheaper.
        "cache_over_charon": {
            op: _paired(samples[op]["cache_django_redis"], samples[op]["charon"]) for op in OPS
        },
        "samples": {
            op: {
                name: {f: [round(s[f], 2) for s in runs] for f in ("wall_us", "cpu_us")}
                for name, runs in per.items()
            }
            for op, per in samples.items()
        },
    }


def _paired(num: list[dict[str, float]], den: list[dict[str, float]]) -> dict[str, float]:
    """Median over rounds of num / den, for CPU and for wall time."""
    pairs = list(zip(num, den, strict=True))
    return {
        "cpu": round(statistics.median(a["cpu_us"] / b["cpu_us"] for a, b in pairs), 3),
        "wall": round(statistics.median(a["wall_us"] / b["wall_us"] for a, b in pairs), 3),
    }
