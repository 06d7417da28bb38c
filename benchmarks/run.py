"""Benchmark every session engine on one Redis server; write the report.

    python -m benchmarks.run            # the full run (about 15 minutes)
    python -m benchmarks.run --quick    # small sizes, fewer repetitions (a smoke run)
    python -m benchmarks.run --only store,memory    # some sections, printed only
    python -m benchmarks.run --only by_size --merge # rerun sections into results.json

``scripts/bench`` makes a virtualenv with what this needs and runs it. It
starts its own redis-server on loopback and a SQLite file in a temporary
directory, measures (see :mod:`benchmarks.store`, :mod:`benchmarks.measure`,
:mod:`benchmarks.memory`, :mod:`benchmarks.scale` and :mod:`benchmarks.e2e`),
and writes ``benchmarks/results.json``, ``docs/benchmarks.md`` and the plots
under ``docs/images/``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = ("store", "requests", "login", "by_size", "memory", "user_ops", "cleanup", "e2e")


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
    parser.add_argument(
        "--store-rounds", type=int, default=21, help="interleaved rounds, store level"
    )
    parser.add_argument(
        "--store-batch", type=int, default=500, help="operations per batch, store level"
    )
    parser.add_argument(
        "--size-rounds",
        type=int,
        default=61,
        help="interleaved rounds at each size of by_size (default: %(default)s)",
    )
    parser.add_argument(
        "--size-batch",
        type=int,
        default=250,
        help="operations per batch at each size of by_size (default: %(default)s)",
    )
    parser.add_argument(
        "--memory-sessions", type=int, default=100_000, help="sessions per memory case"
    )
    parser.add_argument("--e2e-seconds", type=float, default=8.0)
    parser.add_argument("--no-e2e", action="store_true")
    parser.add_argument("--no-report", action="store_true", help="write results.json only")
    parser.add_argument(
        "--idle-cores",
        action="store_true",
        help="do not keep the CPUs awake with lowest-priority spinners (see busy_cores)",
    )
    parser.add_argument(
        "--results",
        default=str(ROOT / "benchmarks" / "results.json"),
        help="where to write the results (default: benchmarks/results.json)",
    )
    parser.add_argument(
        "--docs",
        default=str(ROOT / "docs"),
        help="where to write benchmarks.md and images/ (default: docs/)",
    )
    parser.add_argument(
        "--only",
        default="",
        help=f"comma separated sections to run, of {', '.join(SECTIONS)}; the results are "
        "printed, and neither results.json nor the report is written (unless --merge)",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="with --only: replace those sections in the existing results (--results), "
        "keep the others, and write the results and the report as a full run does",
    )
    args = parser.parse_args()  # fmt: skip
    only = [s for s in args.only.split(",") if s]
    if unknown := set(only) - set(SECTIONS):
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    if args.merge and not only:
        parser.error("--merge needs --only")
    if args.merge and not Path(args.results).exists():
        parser.error(f"--merge: no results to merge into at {args.results}")
    args.sections = only or [s for s in SECTIONS if not (s == "e2e" and args.no_e2e)]
    if args.quick:
        args.sizes, args.reps, args.user_ops_size = "1000,20000", 3, 20_000
        args.stale, args.e2e_seconds = 20_000, 2.0
        args.store_rounds, args.store_batch, args.memory_sessions = 9, 300, 20_000
        args.size_rounds, args.size_batch = 15, 200
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


def _say(text: str) -> None:
    print(text, flush=True)


@contextlib.contextmanager
def busy_cores(enabled: bool) -> Iterator[None]:
    """Keep every CPU awake with a spinner at the lowest priority.

    On these small VMs an idle CPU sleeps, and waking it costs every round
    trip tens of microseconds of CPU time on both sides of the socket,
    varying with how idle the machine happens to be (a PING swung from 40 to
    390 us between two runs). A ``nice 19`` spinner per CPU keeps the CPUs
    awake and yields to any other process at once, so the figures measure the
    candidates' own work. It takes the same fixed cost off every candidate,
    which makes the ratios to the floor larger, not smaller.
    """
    if not enabled:
        yield
        return
    spinners = [
        subprocess.Popen(["nice", "-n", "19", sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 1)
    ]
    try:
        time.sleep(0.5)
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def main() -> None:
    args = _args()
    with busy_cores(not args.idle_cores):
        _main(args)


def _main(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(ROOT))
    from tests.harness import RedisServer

    sizes = [int(s) for s in args.sizes.split(",")]
    server = RedisServer().start()
    workdir = Path(tempfile.mkdtemp(prefix="charon-bench-"))
    try:
        _setup(server.url, workdir / "bench.sqlite3")
        from benchmarks import e2e, measure, memory, scale, store

        admin = server.client()
        make_user = _user_factory()
        started = time.perf_counter()
        results: dict[str, Any] = {"machine": _machine(admin), "args": vars(args)}
        run = set(args.sections)
        timer = _SectionTimer(results)
        if "store" in run:
            _say("store level: floor, charon, cache engine, interleaved...")
            results["store"] = store.run(admin, make_user(), args.store_rounds, args.store_batch)
            _say(
                json.dumps(
                    {k: results["store"][k] for k in ("ops", "x_floor", "cache_over_charon")}
                )
            )
            scale.clear(admin)
        timer.mark()
        if "requests" in run:
            _say("requests (Django's WSGI handler, in process)...")
            results["requests"] = measure.request_level(make_user(), args.reps)
            _say(json.dumps(results["requests"]))
        timer.mark()
        if "login" in run:
            _say("login...")
            results["login"] = measure.login_level(make_user(), args.reps)
        timer.mark()
        if "by_size" in run:
            _say("store level by sessions stored: floor, charon, cache engine, interleaved...")
            results["by_size"] = store.by_size(
                admin, make_user(), sizes, args.size_rounds, args.size_batch
            )
            _say(json.dumps(results["by_size"]["flat"]))
        timer.mark()
        if "memory" in run:
            _say(f"memory ({args.memory_sessions:,} sessions per case)...")
            scale.clear(admin)
            results["memory"] = memory.run(admin, make_user(), args.memory_sessions)
            _say(json.dumps(results["memory"]))
        timer.mark()
        if "user_ops" in run:
            _say("a user's sessions: list 1,000, end 10,000...")
            results["user_ops"] = scale.user_ops(admin, make_user, args.user_ops_size, args.reps)
        timer.mark()
        if "cleanup" in run:
            _say("cleanup...")
            results["cleanup"] = scale.cleanup(admin, args.stale)
        timer.mark()
        if "e2e" in run:
            _say("end to end (gunicorn + wrk)...")
            scale.clear(admin)
            results["e2e"] = e2e.run(make_user(), args.e2e_seconds, max(3, args.reps // 2))
        timer.mark()
        results["seconds"] = round(time.perf_counter() - started)
    finally:
        server.close()
    if args.only and not args.merge:
        print(json.dumps(results, indent=2))
        return
    out = Path(args.results)
    if args.merge:
        results = merge(json.loads(out.read_text()), results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    _say(f"wrote {out} ({results['seconds']} s)")
    from benchmarks import report

    _say(report.targets_text(results))
    if not args.no_report:
        for path in report.write(results, Path(args.docs)):
            _say(f"wrote {path}")


class _SectionTimer:
    """Record how long each section took, in ``results["section_seconds"]``.

    ``mark()`` (called after each section has run, and once at the end)
    books the time since the last mark to the sections that appeared meanwhile.
    """

    def __init__(self, results: dict[str, Any]) -> None:
        self.results = results
        self.seen = set(results)
        self.last = time.perf_counter()
        results["section_seconds"] = {}

    def mark(self) -> None:
        now = time.perf_counter()
        new = [k for k in self.results if k not in self.seen and k in SECTIONS]
        for name in new:
            self.results["section_seconds"][name] = round((now - self.last) / len(new))
        self.seen.update(new)
        self.last = now


def merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Return ``old`` with the sections ``new`` ran replaced by ``new``'s.

    "machine" becomes the new run's (the same machine; its PING moves from run
    to run). "seconds" stays the time a full run takes: the old total, with
    the old time of each section replaced swapped for its new time (when the
    old results record it in "section_seconds"; else the old total stands).
    "merged" lists each merge: its sections, when, its seconds, its arguments
    and the PING it replaced.
    """
    ran = [s for s in SECTIONS if s in new]
    out = {k: v for k, v in old.items()}
    old_times = dict(old.get("section_seconds", {}))
    new_times = new.get("section_seconds", {})
    seconds = old.get("seconds", 0)
    for name in ran:
        out[name] = new[name]
        if name in old_times:  # else the old total keeps the old section's time
            seconds += new_times.get(name, 0) - old_times[name]
        old_times[name] = new_times.get(name, 0)
    out["section_seconds"] = old_times
    out["seconds"] = max(seconds, 0)
    out["merged"] = [
        *old.get("merged", []),
        {
            "sections": ran,
            "date": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
            "seconds": new.get("seconds", 0),
            "args": {k: v for k, v in new["args"].items() if k not in ("results", "docs")},
            "previous_ping_us": old.get("machine", {}).get("ping_us"),
        },
    ]
    out["machine"] = new["machine"]
    if "user_ops" in ran:  # the report reads it from the arguments
        out.setdefault("args", {})["user_ops_size"] = new["args"]["user_ops_size"]
    # Keep the sections in the order a full run writes them.
    order = ["machine", "args", *SECTIONS]
    return {k: out[k] for k in order if k in out} | {k: v for k, v in out.items() if k not in order}


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
