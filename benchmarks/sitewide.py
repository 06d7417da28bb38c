"""Benchmark: the admin's site-wide sessions page and the "who is online" counters.

Starts its own redis-server on loopback, signs in SESSIONS sessions, each of
its own user (the engine's ``create`` function, pipelined, as
:mod:`benchmarks.scale` fills a store: so every session is in its slot's
activity sets exactly as a sign-in puts it there), then times, over REPS
runs each (medians, in ms):

- a page's worth of the newest live sessions (:func:`activity.recent_sessions`),
  first page and the next;
- the counters (:func:`activity.online`);
- a search by IP within an hour, which reads the newest ``SEARCH_LIMIT``;
- the whole admin page (a superuser, Django's test client).

    python -m benchmarks.sitewide                    # 1,000,000 sessions
    python -m benchmarks.sitewide --sessions 100000  # a quicker run

The results go to benchmarks/sitewide.json, from which
``python -m benchmarks.report`` writes the section of docs/benchmarks.md.

Run from the repository root.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")

CHUNK = 5_000


def fill(admin: Any, count: int) -> None:
    """Sign in ``count`` sessions, user ``i`` for the ``i``-th, with the engine's create call."""

    from django.conf import settings

    from django_charon_sessions import calls
    from django_charon_sessions.codec import now
    from django_charon_sessions.keyspace import Keys, key_prefix, new_session_key, user_tag
    from django_charon_sessions.state import context

    ctx = context()
    ttl = settings.SESSION_COOKIE_AGE * 1000
    prefix = key_prefix()
    pipe = admin.pipeline(transaction=False)
    for i in range(count):
        uid = str(100_000 + i)
        body = ctx.codec.dumps({"_auth_user_id": uid})
        created = now()
        names = Keys.for_session(prefix, new_session_key(user_tag(uid)))
        record = ctx.codec.record(names.member, uid, created, body, 1, created)
        facts = json.dumps({"ip": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", "ua": ""})
        call = calls.create(names, ttl, uid, created, record, facts, ctx.absolute, 0, True)
        pipe.execute_command(*call.command())
        if i % CHUNK == CHUNK - 1:
            _created(pipe.execute())
    _created(pipe.execute())


def _created(replies: list[Any]) -> None:
    assert all(r == 1 for r in replies), [r for r in replies if r != 1][:3]


def timed(func: Any, reps: int) -> float:
    """Return the median milliseconds of ``reps`` calls of ``func``."""
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        func()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--results",
        default=str(ROOT / "benchmarks" / "sitewide.json"),
        help="where to write the results, for docs/benchmarks.md (python -m benchmarks.report)",
    )
    args = parser.parse_args()

    import django

    from tests.harness import RedisServer

    server = RedisServer().start()
    try:
        from django.conf import settings

        django.setup()
        settings.CHARON_SESSIONS = {"URL": server.url, "SOCKET_TIMEOUT": 60, "SITE_ACTIVITY": True}
        settings.DATABASES["default"]["NAME"] = ":memory:"
        from django.contrib.auth import get_user_model
        from django.core.management import call_command
        from django.test import Client
        from django.test.utils import setup_test_environment

        from django_charon_sessions import activity
        from django_charon_sessions import client as client_module

        client_module.reset()
        setup_test_environment()
        call_command("migrate", verbosity=0, run_syncdb=True)
        admin = server.client()
        from django_charon_sessions.calls import load_library

        load_library(admin)
        started = time.perf_counter()
        fill(admin, args.sessions)
        filled = time.perf_counter() - started

        boss = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
        browser = Client()
        browser.force_login(boss)
        url = "/admin/django_charon_sessions/sitesession/"
        assert browser.get(url).status_code == 200

        first, cursor = activity.recent_sessions(50)
        assert len(first) == 50, len(first)
        online = activity.online()
        result = {
            "sessions": args.sessions,
            "keys_in_redis": admin.dbsize(),
            "used_memory_mb": round(admin.info("memory")["used_memory"] / 2**20),
            "fill_seconds": round(filled, 1),
            "online": [(int(o.window.total_seconds()), o.users, o.sessions) for o in online],
            "ms": {
                "newest_50": timed(lambda: activity.recent_sessions(50), args.reps),
                "next_50": timed(lambda: activity.recent_sessions(50, before_ms=cursor), args.reps),
                "online_counters": timed(activity.online, args.reps),
                "search_ip_last_hour": timed(
                    lambda: activity.search_sessions(
                        lambda s: s.ip == "10.0.0.1", activity.ONLINE_WINDOWS[1]
                    ),
                    args.reps,
                ),
                "admin_page": timed(lambda: browser.get(url), args.reps),
            },
            "reps": args.reps,
            "redis": admin.info("server")["redis_version"],
        }
        Path(args.results).write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2) if args.json else _text(result))
    finally:
        server.close()


def _text(r: dict[str, Any]) -> str:
    lines = [
        f"{r['sessions']:,} signed-in sessions ({r['keys_in_redis']:,} keys, "
        f"{r['used_memory_mb']} MB; Redis {r['redis']}), filled in {r['fill_seconds']} s",
        "online (window s, users, sessions): " + str(r["online"]),
        f"medians of {r['reps']} runs:",
    ]
    lines += [f"  {name}: {ms} ms" for name, ms in r["ms"].items()]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
