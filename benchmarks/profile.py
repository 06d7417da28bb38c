"""Profile signed-in requests of one engine with cProfile.

    python -m benchmarks.profile charon             # the read-modify-write page
    python -m benchmarks.profile floor --page read  # the read-only page
    python -m benchmarks.profile charon --filter django_charon_sessions

Starts its own redis-server and SQLite file like :mod:`benchmarks.run`, makes
200 signed-in sessions, runs 2,000 requests through Django's WSGI handler
under cProfile and prints the top functions by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description="Profile one engine's requests.")
    parser.add_argument("engine", help="floor, charon, cache_django_redis, ...")
    parser.add_argument("--page", choices=["read", "write"], default="write")
    parser.add_argument("--filter", default="", help="only functions whose path matches")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.harness import RedisServer

    server = RedisServer().start()
    try:
        from benchmarks.run import _setup

        _setup(server.url, Path(tempfile.mkdtemp(prefix="charon-prof-")) / "db.sqlite3")
        from django.contrib.auth import get_user_model
        from django.core.handlers.wsgi import WSGIHandler

        from benchmarks import measure
        from benchmarks.engines import ENGINES

        engine = ENGINES[args.engine]
        user = get_user_model().objects.create_user("profiled", password="x")
        with measure.engine_settings(engine):
            handler = WSGIHandler()
            keys = measure.make_sessions(engine, 200, user)
            environs = [measure.environ(f"/{args.page}/", k) for k in keys]
            for _ in range(3):
                measure.run_requests(handler, environs)
            started = time.perf_counter()
            for _ in range(10):
                measure.run_requests(handler, environs)
            per_request = (time.perf_counter() - started) / (10 * len(environs)) * 1e6
            print(f"{args.engine}: {per_request:.0f} us per request, without the profiler")
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(10):
                measure.run_requests(handler, environs)
            profile.disable()
        stats = pstats.Stats(profile).sort_stats("cumulative")
        stats.print_stats(args.filter, args.top)
    finally:
        server.close()


if __name__ == "__main__":
    main()
