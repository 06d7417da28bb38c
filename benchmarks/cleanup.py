"""Benchmark: sessions_cleanup against many stale index entries.

Starts its own redis-server on loopback, fills it with USERS user indexes of
ENTRIES stale entries each (half expired, half whose session record
vanished, as after eviction) plus LIVE live sessions per user, runs the
cleanup twice and prints run time, peak memory of this process, and entries
removed per second. The second run must remove nothing.

    python -m benchmarks.cleanup                 # 100,000 users x 10 = 1,000,000 stale
    python -m benchmarks.cleanup --users 10000   # a quicker run

Run from the repository root (the demo's virtualenv or tox's have what it needs).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")


def seed(client, users: int, entries: int, live: int) -> None:
    """Write ``users`` user indexes of ``entries`` stale entries and ``live`` live ones each.

    The layout is the engine's (see :mod:`django_charon_sessions.keyspace`):
    each index entry has its metadata field, as a login writes both. Half the
    stale entries have expired (score in the past); the other half are not
    expired, but their record ``P:{T}:r:M`` is gone, as after eviction. Each
    live entry has a record; the sweep only asks whether it exists, so its
    value is a header with no valid seal behind it.
    """
    from django_charon_sessions.keyspace import UserKeys, key_prefix, random_tag

    prefix = key_prefix()
    now_s = int(time.time())
    now_ms = now_s * 1000
    later_ms = now_ms + 3_600_000
    meta_value = f"{now_s:010d}|{now_s - 600:010d}|"
    pipe = client.pipeline(transaction=False)
    for u in range(users):
        keys = UserKeys.for_tag(prefix, random_tag())
        scores = {}
        for e in range(entries):
            # Half expired, half vanished (not expired, no record).
            scores[f"{u:013x}{e:013x}"] = now_ms - 60_000 if e % 2 == 0 else later_ms
        for n in range(live):
            member = f"{u:013x}{entries + n:013x}"
            scores[member] = later_ms
            header = f"{now_s:010d},1,{now_s},{len(str(u))}:{u}"
            pipe.set(keys.record(member), header, px=3_600_000)
        pipe.zadd(keys.index, scores)
        pipe.hset(keys.meta, mapping=dict.fromkeys(scores, meta_value))
        pipe.pexpireat(keys.index, later_ms)
        pipe.pexpireat(keys.meta, later_ms)
        if u % 1000 == 999:
            pipe.execute()
    pipe.execute()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=10, help="stale entries per user")
    parser.add_argument("--live", type=int, default=1, help="live sessions per user")
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import django

    from tests.harness import RedisServer

    server = RedisServer().start()
    try:
        from django.conf import settings

        django.setup()
        settings.CHARON_SESSIONS = {"URL": server.url, "SOCKET_TIMEOUT": 30}
        from django_charon_sessions import client as client_module
        from django_charon_sessions.maintenance import cleanup

        client_module.reset()
        admin = server.client()
        started = time.perf_counter()
        seed(admin, args.users, args.entries, args.live)
        seeded = time.perf_counter() - started
        keys_before = admin.dbsize()

        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        first = cleanup(batch_size=args.batch_size)
        first_time = time.perf_counter() - started
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        second = cleanup(batch_size=args.batch_size)
        second_time = time.perf_counter() - started

        stale = first.expired + first.vanished
        result = {
            "users": args.users,
            "stale_entries": args.users * args.entries,
            "live_sessions": args.users * args.live,
            "keys_in_redis": keys_before,
            "seed_seconds": round(seeded, 2),
            "first_run": {
                "seconds": round(first_time, 2),
                "removed": stale,
                "expired": first.expired,
                "vanished": first.vanished,
                "removed_per_second": round(stale / first_time),
                # Peak resident set of the process (KiB on Linux); growth shows
                # whether memory stays bounded while millions of entries go by.
                "peak_rss_mb": round(rss_after / 1024, 1),
                "peak_rss_growth_mb": round((rss_after - rss_before) / 1024, 1),
                "live_sessions": first.live_sessions,
            },
            "second_run": {
                "seconds": round(second_time, 2),
                "removed": second.expired + second.vanished,
            },
            "redis": admin.info("server")["redis_version"],
        }
        print(json.dumps(result, indent=2) if args.json else _text(result))
    finally:
        server.close()


def _text(r: dict) -> str:
    f, s = r["first_run"], r["second_run"]
    return (
        f"{r['stale_entries']:,} stale entries over {r['users']:,} users "
        f"({r['live_sessions']:,} live sessions, {r['keys_in_redis']:,} keys; Redis {r['redis']})\n"
        f"first run:  {f['seconds']} s, removed {f['removed']:,} "
        f"({f['expired']:,} expired, {f['vanished']:,} vanished), "
        f"{f['removed_per_second']:,} entries/s, peak RSS {f['peak_rss_mb']} MB "
        f"(+{f['peak_rss_growth_mb']} MB during the run)\n"
        f"second run: {s['seconds']} s, removed {s['removed']:,}"
    )


if __name__ == "__main__":
    main()
