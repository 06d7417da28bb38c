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

:func:`by_size` runs the same three at each number of sessions stored, with
the batches drawn from the whole stored set.
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
#
# Each candidate is three functions: "ro" and "rw" run one operation on every key
# of a list (the caller may replace the list's contents between batches, to
# spread the batches over a larger stored set), and "visits" reads one key's
# visit counter, to check that every read-modify-write was saved.

Funcs = dict[str, Any]


def floor_funcs(keys: list[str]) -> Funcs:
    """The floor on ``keys``, already stored as pickled dicts (see :func:`floor_keys`)."""
    import redis

    r = redis.Redis.from_url(settings.BENCH_FLOOR_URL)
    age = settings.SESSION_COOKIE_AGE

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

    def visits(key: str) -> int:
        return int(pickle.loads(r.get(key))["visits"])  # type: ignore[arg-type]

    return {"ro": ro, "rw": rw, "visits": visits}


def floor_keys(session: dict[str, Any], count: int) -> list[str]:
    """Store ``count`` floor sessions (plain ``SET``s, pipelined); return their keys."""
    import redis

    r = redis.Redis.from_url(settings.BENCH_FLOOR_URL)
    age = settings.SESSION_COOKIE_AGE
    value = pickle.dumps(session)
    keys = [f"floor-store:{uuid.uuid4().hex}" for _ in range(count)]
    pipe = r.pipeline(transaction=False)
    for i, key in enumerate(keys):
        pipe.set(key, value, ex=age)
        if i % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    return keys


def engine_funcs(name: str, keys: list[str]) -> Funcs:
    """Engine ``name``'s ``SessionStore`` on ``keys``, sessions it can load."""
    store = store_class(ENGINES[name])

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

    def visits(key: str) -> int:
        return int(store(key)["visits"])

    return {"ro": ro, "rw": rw, "visits": visits}


def _engine_keys(name: str, user: Any, count: int) -> list[str]:
    engine = ENGINES[name]
    with engine_settings(engine):
        return make_sessions(engine, count, user)


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


Samples = dict[str, dict[str, list[dict[str, float]]]]


def interleaved(
    admin: redis.Redis,
    candidates: dict[str, Funcs],
    rounds: int,
    choose: Callable[[str], None] | None = None,
) -> tuple[Samples, float, float]:
    """Run ``rounds`` rounds of a batch per candidate and operation, rotating the order.

    ``choose(op)``, if given, is called before each operation's batches of a
    round (outside the timed windows), to pick the keys they run on. Returns
    the samples, the ``INFO`` cost and the idle server's CPU rate.
    """
    for op in OPS:  # warm up: connections, the function library
        if choose is not None:
            choose(op)
        for funcs in candidates.values():
            funcs[op]()
    info_cost = info_overhead(admin)
    idle = idle_rate(admin)
    names = tuple(candidates)
    samples: Samples = {op: {name: [] for name in names} for op in OPS}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for op in OPS:
            if choose is not None:
                choose(op)
            for name in order:
                samples[op][name].append(_batch(admin, candidates[name][op], info_cost, idle))
    return samples, info_cost, idle


def summary(
    samples: Samples, rounds: int, batch: int, info_cost: float, idle: float
) -> dict[str, Any]:
    """Medians per candidate, ratios to the floor and of ``cache`` to this engine."""
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


def run(admin: redis.Redis, user: Any, rounds: int = 21, batch: int = 500) -> dict[str, Any]:
    """Measure the three candidates, interleaved; return medians, ratios and samples."""
    session = {**DATA, **auth_data(user)}
    # The cache engine reads its cache alias when a store is made: set it for
    # the whole run (the other two do not read it), so no batch switches settings.
    with override_settings(SESSION_CACHE_ALIAS=ENGINES["cache_django_redis"].cache_alias):
        keys = {
            "floor": floor_keys(session, batch),
            "charon": _engine_keys("charon", user, batch),
            "cache_django_redis": _engine_keys("cache_django_redis", user, batch),
        }
        candidates = {
            name: floor_funcs(k) if name == "floor" else engine_funcs(name, k)
            for name, k in keys.items()
        }
        samples, info_cost, idle = interleaved(admin, candidates, rounds)
        # Every read-modify-write was saved: one per warm-up and per round.
        for name, funcs in candidates.items():
            seen = funcs["visits"](keys[name][0])
            assert seen == DATA["visits"] + 1 + rounds, (name, seen)
    return summary(samples, rounds, batch, info_cost, idle)


# -- by sessions stored -----------------------------------------------------------


def by_size(
    admin: redis.Redis, user: Any, sizes: list[int], rounds: int = 21, batch: int = 500
) -> dict[str, Any]:
    """The three candidates at each number of sessions stored, each size interleaved.

    At each size the floor's keys, this engine's sessions and the cache
    engine's sessions are all stored side by side, ``size`` of each (filled
    up to it before measuring: see :func:`benchmarks.scale.fill_sessions`).
    Each batch runs on ``batch`` sessions drawn at random from the whole
    stored set of each candidate (the same positions for all three), so the
    larger the set, the colder the sessions a batch touches. Flatness is
    judged on this engine's ratio to the floor: the machine's speed drifts
    between sizes, the ratio within a size does not.
    """
    import random

    from benchmarks import scale

    rng = random.Random(20240607)
    session = {**DATA, **auth_data(user)}
    stored: dict[str, list[str]] = {name: [] for name in CANDIDATES}
    out: dict[str, Any] = {"rounds": rounds, "batch": batch, "sizes": {}}
    scale.clear(admin)
    with override_settings(SESSION_CACHE_ALIAS=ENGINES["cache_django_redis"].cache_alias):
        for size in sizes:
            started = time.perf_counter()
            for name, keys in stored.items():
                keys += scale.fill_sessions(name, admin, size - len(keys), session, user)
            fill = time.perf_counter() - started
            chosen: dict[str, list[str]] = {name: [] for name in CANDIDATES}
            counts: dict[int, int] = {}

            def choose(
                op: str,
                size: int = size,
                chosen: dict[str, list[str]] = chosen,
                counts: dict[int, int] = counts,
            ) -> None:
                picks = rng.sample(range(size), min(batch, size))
                for name, keys in chosen.items():
                    keys[:] = [stored[name][i] for i in picks]
                if op == "rw":
                    for i in picks:
                        counts[i] = counts.get(i, 0) + 1

            candidates = {
                name: floor_funcs(keys) if name == "floor" else engine_funcs(name, keys)
                for name, keys in chosen.items()
            }
            samples, info_cost, idle = interleaved(admin, candidates, rounds, choose)
            # Every read-modify-write was saved, on the sessions it was meant for.
            for i in rng.sample(sorted(counts), min(20, len(counts))):
                for name, funcs in candidates.items():
                    seen = funcs["visits"](stored[name][i])
                    assert seen == DATA["visits"] + counts[i], (name, i, seen, counts[i])
            result = summary(samples, rounds, batch, info_cost, idle)
            result["fill_seconds"] = round(fill, 1)
            result["redis_keys"] = admin.dbsize()
            out["sizes"][str(size)] = result
            ro, rw = result["x_floor"]["ro"]["charon"], result["x_floor"]["rw"]["charon"]
            print(
                f"  {size:>9,} stored (filled in {fill:.0f} s): charon x floor, CPU "
                f"load {ro['cpu']:.2f}, save {rw['cpu']:.2f}; wall {ro['wall']:.2f}, "
                f"{rw['wall']:.2f}",
                flush=True,
            )
    scale.clear(admin)
    out["flat"] = flatness(out["sizes"])
    return out


def flatness(sizes: dict[str, Any]) -> dict[str, dict[str, float]]:
    """This engine's figures at the largest size over those at the smallest, per op.

    ``x_floor_cpu`` (the judged one) and ``x_floor_wall``: of the ratio to the
    floor; ``raw_cpu`` and ``raw_wall``: of the medians themselves.
    """
    order = sorted(sizes, key=int)
    small, big = sizes[order[0]], sizes[order[-1]]
    out = {}
    for op in OPS:
        xs, xb = small["x_floor"][op]["charon"], big["x_floor"][op]["charon"]
        fs, fb = small["ops"][op]["charon"], big["ops"][op]["charon"]
        out[op] = {
            "x_floor_cpu": round(xb["cpu"] / xs["cpu"], 3),
            "x_floor_wall": round(xb["wall"] / xs["wall"], 3),
            "raw_cpu": round(fb["cpu_us"] / fs["cpu_us"], 3),
            "raw_wall": round(fb["wall_us"] / fs["wall_us"], 3),
        }
    return out


def _paired(num: list[dict[str, float]], den: list[dict[str, float]]) -> dict[str, float]:
    """Median over rounds of num / den, for CPU and for wall time."""
    pairs = list(zip(num, den, strict=True))
    return {
        "cpu": round(statistics.median(a["cpu_us"] / b["cpu_us"] for a, b in pairs), 3),
        "wall": round(statistics.median(a["wall_us"] / b["wall_us"] for a, b in pairs), 3),
    }
