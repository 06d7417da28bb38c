"""Benchmark every session engine on one Redis server; write the report.

    python -m benchmarks.run            # the full run (about 15 minutes)
    python -m benchmarks.run --quick    # small sizes, fewer repetitions (a smoke run)

``scripts/bench`` makes a virtualenv with what this needs and runs it. It
starts its own redis-server on loopback and a SQLite file in a temporary
directory, measures (see :mod:`benchmarks.measure`, :mod:`benchmarks.scale`
and :mod:`benchmarks.e2e`), and writes ``benchmarks/results.json``,
``docs/benchmarks.md`` and the plots under ``docs/images/``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark the session engines.")
    parser.add_argument("--quick", action="store_true", help="small sizes, few repetitions")
    parser.add_argument(
        "--sizes",
        default="1000,100000,1000000",
        help="sessions stored, comma separated (default: %(default)s)",
    )
    parser.add_argument("--reps", type=int, default=7, help="repetitions per figure")
    parser.add_argument(
        "--user-ops-size",
        type=int,
        default=100_000,
        help="sessions stored around the listed and ended users",
    )
    parser.add_argument("--stale", type=int, default=200_000, help="stale entries to clean up")
    parser.add_argument("--e2e-seconds", type=float, default=8.0)
    parser.add_argument("--no-e2e", action="store_true")
    parser.add_argument("--no-report", action="store_true", help="print the results only")
    args = parser.parse_args()  # fmt: skip
    if args.quick:
        args.sizes, args.reps, args.user_ops_size = "1000,20000", 3, 20_000
        args.stale, args.e2e_seconds = 20_000, 2.0
    return args


def _setup(redis_url: str, db: Path) -> None:
    os.environ["BENCH_REDIS_URL"] = redis_url
    os.environ["BENCH_DB"] = str(db)
    os.environ["DJANGO_SETTINGS_MODULE"] = "benchmarks.settings"
    sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def _user_factory() -> Any:
    from django.contrib.auth import get_user_model

    counter = itertools.count()

    def make() -> Any:
        return get_user_model().objects.create_user(f"user{next(counter)}", password="x")

    return make


def _by_size(admin: Any, make_user: Any, sizes: list[int], reps: int) -> dict[str, Any]:
    from benchmarks import measure, scale
    from benchmarks.engines import ENGINES

    out: dict[str, Any] = {}
    for engine in ENGINES.values():
        scale.clear(admin)
        stored = 0
        for size in sizes:
            scale.fill(engine, admin, size - stored, make_user())
            stored = size
            ops = measure.store_ops(engine, make_user(), reps)
            out.setdefault(engine.name, {})[str(size)] = ops
            _say(f"  {engine.name:20s} {size:>9,} stored: read {ops['read']:.1f} us, "
                 f"rmw {ops['rmw']:.1f} us")  # fmt: skip
    scale.clear(admin)
    out["bare_redis_py"] = {str(sizes[0]): measure.floor_ops(reps)}
    return out


def _say(text: str) -> None:
    print(text, flush=True)


def main() -> None:
    args = _args()
    sys.path.insert(0, str(ROOT))
    from tests.harness import RedisServer

    sizes = [int(s) for s in args.sizes.split(",")]
    server = RedisServer().start()
    workdir = Path(tempfile.mkdtemp(prefix="charon-bench-"))
    try:
        _setup(server.url, workdir / "bench.sqlite3")
        from benchmarks import e2e, measure, scale

        admin = server.client()
        make_user = _user_factory()
        started = time.perf_counter()
        results: dict[str, Any] = {"machine": _machine(admin), "args": vars(args)}
        _say("requests (Django's WSGI handler, in process)...")
        results["requests"] = measure.request_level(make_user(), args.reps)
        _say(json.dumps(results["requests"]))
        _say("login...")
        results["login"] = measure.login_level(make_user(), args.reps)
        _say("store operations by sessions stored...")
        results["by_size"] = _by_size(admin, make_user, sizes, args.reps)
        _say("memory...")
        scale.clear(admin)
        results["memory"] = scale.memory(admin, make_user)
        _say("a user's sessions: list 1,000, end 10,000...")
        results["user_ops"] = scale.user_ops(admin, make_user, args.user_ops_size, args.reps)
        _say("cleanup...")
        results["cleanup"] = scale.cleanup(admin, args.stale)
        if not args.no_e2e:
            _say("end to end (gunicorn + wrk)...")
            scale.clear(admin)
            results["e2e"] = e2e.run(make_user(), args.e2e_seconds, max(3, args.reps // 2))
        results["seconds"] = round(time.perf_counter() - started)
    finally:
        server.close()
    out = ROOT / "benchmarks" / "results.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    _say(f"wrote {out.relative_to(ROOT)} ({results['seconds']} s)")
    if not args.no_report:
        from benchmarks import report

        for path in report.write(results, ROOT / "docs"):
            _say(f"wrote {path.relative_to(ROOT)}")


def _machine(admin: Any) -> dict[str, Any]:
    import django
    import redis

    pings = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(1000):
            admin.ping()
        pings.append((time.perf_counter() - started) / 1000 * 1e6)
    return {
        # The loopback round trip of a PING through redis-py: the unit most
        # figures here are made of (it varies with how busy the CPUs are).
        "ping_us": round(sorted(pings)[2], 1),
        "python": platform.python_version(),
        "django": django.get_version(),
        "redis_py": redis.__version__,
        "redis_server": admin.info("server")["redis_version"],
        "cpus": os.cpu_count(),
        "platform": platform.platform(terse=True),
    }


if __name__ == "__main__":
    main()
