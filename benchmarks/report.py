"""Turn ``benchmarks/results.json`` into docs/benchmarks.md and PNG plots.

python -m benchmarks.report     # rewrite the report from the last results
python -m benchmarks.report RESULTS.json DOCS_DIR   # another run's, elsewhere
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LABELS = {
    "floor": "redis-py GET+SET (floor)",
    "charon": "**django-charon-sessions**",
    "cache_django_redis": "`cache` on django-redis",
    "cache_redis": "`cache` on Django's RedisCache",
    "cached_db": "`cached_db` (django-redis + SQLite)",
    "db": "`db` (SQLite)",
    "bare_redis_py": "bare redis-py GET / GET+SET, no Django",
}


def _plain(name: str) -> str:
    return LABELS[name].replace("*", "").replace("`", "")


def _fmt(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


#: What the brief asks of the run itself, to judge its numbers at full strength.
#: The memory cases (benchmarks/memory.py) as the table and the plot name them.
MEMORY_CASES = {
    "anonymous": "anonymous",
    "signed_in": "signed in",
    "signed_in_facts": "signed in, with request facts",
    "signed_in_activity": "signed in, `SITE_ACTIVITY` on",
}
FULL_RUN = {"rounds": 9, "memory_sessions": 100_000, "smallest": 1_000, "largest": 1_000_000}


def _result(met: bool, short: bool = False) -> str:
    return ("PASS" if met else "FAIL") + (" (short run)" if short else "")


def _at_most(value: float, target: float) -> bool:
    """Judge a ratio as shown: rounded to the 2 decimals of the table."""
    return round(value, 2) <= target


def _at_least(value: float, target: float) -> bool:
    return round(value, 2) >= target


def _flat_row(r: dict[str, Any]) -> tuple[str, str, str, str, str]:
    """The flatness target: this engine's ratio to the floor, 1,000,000 over 1,000."""
    target = "load and save flat within 10% from 1,000 to 1,000,000 sessions"
    by = r.get("by_size", {})
    if "sizes" not in by:
        return (target, "-", "-", "not run", "`by_size` missing or of an older layout")
    flat = by["flat"]
    sizes = sorted(by["sizes"], key=int)
    ro, rw = flat["ro"], flat["rw"]
    met = all(0.90 <= round(f["x_floor_cpu"], 2) <= 1.10 for f in (ro, rw))
    short = (
        int(sizes[0]) > FULL_RUN["smallest"]
        or int(sizes[-1]) < FULL_RUN["largest"]
        or by["rounds"] < FULL_RUN["rounds"]
    )
    return (
        target,
        f"load {ro['x_floor_cpu']:.2f}x, save {rw['x_floor_cpu']:.2f}x "
        f"(raw CPU {ro['raw_cpu']:.2f}x, {rw['raw_cpu']:.2f}x)",
        f"{ro['x_floor_wall']:.2f}x, {rw['x_floor_wall']:.2f}x "
        f"(raw {ro['raw_wall']:.2f}x, {rw['raw_wall']:.2f}x)",
        _result(met, short),
        f"CPU x floor at {int(sizes[-1]):,} stored over CPU x floor at {int(sizes[0]):,}, "
        "within [0.90, 1.10]; floor, this engine and `cache` stored side by side, "
        f"{by['rounds']} interleaved rounds of {by['batch']} ops on sessions drawn from "
        "the whole set; raw: this engine's own median, largest size over smallest",
    )


def targets(r: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """Judge each of the brief's numbers: (target, measured, wall time, result, how).

    The store-level ratios are CPU per operation (this process plus the
    Redis server), with the same ratio in wall time beside them. A result is
    marked "(short run)" when the run measured less than the brief asks
    (fewer rounds, sessions or sizes: ``--quick``, say).
    """
    st, mem = r["store"], r["memory"]
    few_rounds = st["rounds"] < FULL_RUN["rounds"]
    rw, ro = st["x_floor"]["rw"]["charon"], st["x_floor"]["ro"]["charon"]
    cheaper = st["cache_over_charon"]["rw"]
    how_store = f"store level, {st['rounds']} interleaved rounds of {st['batch']} ops, medians"

    charon, cache = mem["charon"], mem["cache_django_redis"]
    few_sessions = mem["sessions"] < FULL_RUN["memory_sessions"]
    anon = charon["anonymous"]["bytes_per_session"] / cache["anonymous"]["bytes_per_session"]
    signed = charon["signed_in"]["bytes_per_session"] / cache["signed_in"]["bytes_per_session"]
    how_mem = (
        f"`used_memory` growth over {mem['sessions']:,} sessions, Redis defaults; per "
        "session it carries a few tenths of a byte of noise, so the ratio is judged as "
        "shown, to 2 decimals"
    )

    q = r["requests"]
    req_ro = q["cache_django_redis"]["read"] / q["charon"]["read"]
    req_rw = q["cache_django_redis"]["rmw"] / q["charon"]["rmw"]
    if "e2e" in r:
        e = r["e2e"]
        gun = e["charon"]["rps"] / e["cache_django_redis"]["rps"]
        gunicorn = (
            f"{gun:.2f}x",
            "-",
            _result(_at_least(gun, 1.0)),
            "requests/s, this engine's / `cache`'s",
        )
    else:
        gunicorn = ("-", "-", "not run", "the run had `--no-e2e`")

    ops = r["user_ops"]["charon"]
    clean = r["cleanup"]["charon"]

    return [
        ("signed-in read-modify-write <= 1.15x the floor (CPU)", f"{rw['cpu']:.2f}x",
         f"{rw['wall']:.2f}x", _result(_at_most(rw["cpu"], 1.15), few_rounds), how_store),
        ("read-only load <= 1.10x the floor (CPU)", f"{ro['cpu']:.2f}x", f"{ro['wall']:.2f}x",
         _result(_at_most(ro["cpu"], 1.10), few_rounds), "same"),
        ("read-modify-write >= 1.5x cheaper than `cache` on django-redis (CPU)",
         f"{cheaper['cpu']:.2f}x", f"{cheaper['wall']:.2f}x",
         _result(_at_least(cheaper["cpu"], 1.5), few_rounds),
         "same; `cache`'s cost / this engine's"),
        ("anonymous memory <= 1.0x `cache`", f"{anon:.2f}x", "-",
         _result(_at_most(anon, 1.0), few_sessions), how_mem),
        ("signed-in memory (index entry, metadata; no facts) <= 2.0x `cache` signed in",
         f"{signed:.2f}x", "-", _result(_at_most(signed, 2.0), few_sessions),
         "same; every session another user's"),
        ("read-only request throughput >= `cache` on django-redis", f"{req_ro:.2f}x", "-",
         _result(_at_least(req_ro, 1.0)),
         "Django's handler in process; `cache`'s time / this engine's"),
        ("read-modify-write request throughput >= `cache` on django-redis", f"{req_rw:.2f}x",
         "-", _result(_at_least(req_rw, 1.0)), "same"),
        ("gunicorn + wrk throughput >= `cache` on django-redis", *gunicorn),
        ("list a user with 1,000 sessions in one round trip",
         f"{ops['list_1000_round_trips']} round trip(s)", f"{ops['list_1000_ms']:,} ms",
         _result(ops["list_1000_round_trips"] == 1), "writes to the socket, counted"),
        ("end a user with 10,000 sessions in one round trip",
         f"{ops['end_10000_round_trips']} round trip(s)", f"{ops['end_10000_ms']:,} ms",
         _result(ops["end_10000_round_trips"] == 1), "same"),
        ("cleanup >= 100,000 stale entries/s", f"{clean['per_second']:,}/s", "-",
         _result(clean["per_second"] >= 100_000),
         f"{clean['removed']:,} entries, wall time, one process"),
        _flat_row(r),
    ]  # fmt: skip


def targets_text(r: dict[str, Any]) -> str:
    """The targets as plain text, for the terminal."""
    rows = [(t.replace("`", ""), m, w, res) for t, m, w, res, _ in targets(r)]
    width = max(len(t) for t, *_ in rows)
    mw = max(len(m) for _, m, _, _ in rows)
    ww = max(len(w) for _, _, w, _ in rows)
    lines = [f"{'Target':{width}}  {'measured':>{mw}}  {'wall':>{ww}}  result"]
    lines += [f"{t:{width}}  {m:>{mw}}  {w:>{ww}}  {res}" for t, m, w, res in rows]
    return "\n".join(lines)


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    q, login = r["requests"], r["login"]
    lines = [
        "# Benchmarks",
        "",
        "Written by `scripts/bench` (`python -m benchmarks.run`) from one run: every",
        "engine on the same redis-server (started on loopback by the run) and the same",
        f"SQLite file. Machine: {m['cpus']} CPUs, {m['platform']}, Python {m['python']},",
        f"Django {m['django']}, redis-py {m['redis_py']} (hiredis), Redis {m['redis_server']}.",
        f"A PING through redis-py took {m['ping_us']} us on loopback during the run; most",
        "figures are made of such round trips, Python and, for this engine, Lua.",
        f"Figures are medians of {r['args']['reps']} repetitions; the run took "
        f"{r['seconds'] // 60} minutes. The raw figures are in `benchmarks/results.json`.",
        *_merged_note(r),
        "",
        "## Targets",
        "",
        "The brief's numbers, judged from this run. Ratios are this engine's over the",
        'other\'s, except "cheaper" and throughput, where above 1 is better. Where the',
        'target is about cost, "Measured" is CPU per operation (this process plus the',
        "Redis server) and the wall-time ratio is beside it. A ratio is judged as the",
        "table shows it, rounded to 2 decimals.",
        "",
        "| Target | Measured | Wall time | Result | How |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {t} | {v} | {w} | {res if res.startswith('PASS') else f'**{res}**'} | {h} |"
        for t, v, w, res, h in targets(r)
    ]
    lines += ["", *_store_table(r)]
    lines += [
        "## Requests",
        "",
        "A signed-in request through Django's WSGI handler in process (SessionMiddleware,",
        "AuthenticationMiddleware, the user from SQLite, and for this engine its",
        "SessionMetadataMiddleware as the README sets it up), rotating over 200",
        "sessions. The login is store level: an anonymous session with data is loaded,",
        "cycled and saved signed in, as `django.contrib.auth.login()` does.",
        "",
        "| Engine | read-only | x floor | read-modify-write | x floor | x `cache` | login "
        "| x floor |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in q:
        lines.append(
            f"| {LABELS[name]} | {_fmt(q[name]['read'])} us | "
            f"{q[name]['read'] / q['floor']['read']:.2f} | {_fmt(q[name]['rmw'])} us | "
            f"{q[name]['rmw'] / q['floor']['rmw']:.2f} | "
            f"{q[name]['rmw'] / q['cache_django_redis']['rmw']:.2f} | "
            f"{_fmt(login[name])} us | {login[name] / login['floor']:.2f} |"
        )
    lines += ["", "![Requests](images/bench-requests.png)", ""]
    lines += _by_size_table(r)
    lines += _memory_table(r)
    lines += _user_ops_table(r)
    lines += _cleanup_table(r)
    lines += _sitewide_table(SITEWIDE)
    if "e2e" in r:
        lines += _e2e_table(r)
    lines += [
        "## Reading the figures",
        "",
        "See [benchmarks-notes.md](benchmarks-notes.md) for what limits each figure,",
        "the profiles behind them, and what changed in the engine because of them;",
        "[benchmarks-cleanup.md](benchmarks-cleanup.md) has the cleanup run at a",
        "million stale entries.",
        "",
    ]
    return "\n".join(lines)


def _merged_note(r: dict[str, Any]) -> list[str]:
    merged = r.get("merged", [])
    if not merged:
        return []
    runs = "; ".join(f"{', '.join(m['sections'])} on {m['date']} UTC" for m in merged)
    return [
        f"Some sections were rerun later and merged into these results ({runs});",
        "the machine line above is the last of those runs'.",
    ]


def _by_size_table(r: dict[str, Any]) -> list[str]:
    by = r.get("by_size", {})
    if "sizes" not in by:
        return []
    sizes = sorted(by["sizes"], key=int)
    names = {"ro": "read-only load", "rw": "read-modify-write"}
    lines = [
        "## Load and save by sessions stored",
        "",
        "The store level above, at each number of sessions stored: the floor's keys,",
        "this engine's sessions and the `cache` engine's, as many of each, stored side",
        "by side (this engine's each another user's, with its index entry and",
        f"metadata). Each of {by['rounds']} rounds runs a batch of {by['batch']} operations",
        "of each candidate in turn, on sessions drawn at random from the whole stored",
        "set (the same positions for all three). CPU per operation (this process plus",
        "the Redis server) and wall time, medians over the rounds, in microseconds;",
        '"x floor" is the median of the per-round ratios. The machine\'s speed drifts',
        "between sizes, so flatness is judged on the ratio to the floor.",
        "",
        "| Operation | Stored | floor CPU | this engine CPU | `cache` CPU "
        "| this engine x floor (CPU / wall) | this engine wall | filled up in |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for op in ("ro", "rw"):
        for size in sizes:
            at = by["sizes"][size]
            ops, x = at["ops"][op], at["x_floor"][op]["charon"]
            lines.append(
                f"| {names[op]} | {int(size):,} | {_fmt(ops['floor']['cpu_us'])} us | "
                f"{_fmt(ops['charon']['cpu_us'])} us | "
                f"{_fmt(ops['cache_django_redis']['cpu_us'])} us | "
                f"{x['cpu']:.2f} / {x['wall']:.2f} | {_fmt(ops['charon']['wall_us'])} us | "
                f"{at['fill_seconds']:,.0f} s |"
            )
    flat = by["flat"]
    lines += [
        "",
        f"From {int(sizes[0]):,} to {int(sizes[-1]):,} stored, this engine's ratio to the",
        f"floor moved by {flat['ro']['x_floor_cpu']:.2f}x (load) and "
        f"{flat['rw']['x_floor_cpu']:.2f}x (save) in CPU; its own CPU medians by",
        f"{flat['ro']['raw_cpu']:.2f}x and {flat['rw']['raw_cpu']:.2f}x.",
        "",
        "![Load and save by size](images/bench-sizes.png)",
        "",
    ]
    return lines


def _store_table(r: dict[str, Any]) -> list[str]:
    st = r["store"]
    lines = [
        "## Store level",
        "",
        "The `SessionStore` called directly (no request), with the same data in each:",
        "`DATA` of `benchmarks/measure.py` and Django's three auth keys. The floor is",
        "bare redis-py: `GET` and `pickle.loads`, and for a read-modify-write `GET`,",
        "`pickle.loads`, `SET ... EX` of the pickled dict. Read-only: load a signed-in",
        'session; read-modify-write: load, `s["visits"] += 1`, save.',
        "",
        f"Each of {st['rounds']} rounds runs a batch of {st['batch']} operations of each",
        "candidate in turn (the order rotates), on the same Redis server. CPU is this",
        "process's `time.process_time()` plus the server's `used_cpu_sys + used_cpu_user`",
        "(`INFO cpu` just before and after each batch), less the part of those two",
        f"`INFO` calls that falls inside the window ({st['info_call_server_us']} us per",
        "batch, measured on empty windows) and the idle server's own use",
        f"({st['idle_server_us_per_s']:,} us per second). Per operation, in microseconds,",
        "medians over rounds; a ratio is the median of the ratios within each round.",
        "",
        "| Operation | Candidate | CPU | client / server | wall | CPU x floor | wall x floor "
        "| `cache` / this |",
        "|---|---|---|---|---|---|---|---|",
    ]
    names = {"ro": "read-only load", "rw": "read-modify-write"}
    for op, per in st["ops"].items():
        for name, f in per.items():
            x = st["x_floor"][op].get(name, {"cpu": 1.0, "wall": 1.0})
            vs = st["cache_over_charon"][op]
            versus = f"{vs['cpu']:.2f} CPU, {vs['wall']:.2f} wall" if name == "charon" else "-"
            lines.append(
                f"| {names[op]} | {LABELS[name]} | {_fmt(f['cpu_us'])} us | "
                f"{_fmt(f['client_cpu_us'])} / {_fmt(f['server_cpu_us'])} | "
                f"{_fmt(f['wall_us'])} us | {x['cpu']:.2f} | {x['wall']:.2f} | {versus} |"
            )
    lines += ["", "![Store level](images/bench-store.png)", ""]
    return lines


def _memory_table(r: dict[str, Any]) -> list[str]:
    mem = r["memory"]
    charon, cache = mem["charon"], mem["cache_django_redis"]
    lines = [
        "## Redis memory per session",
        "",
        f"Growth of Redis's `used_memory` over {mem['sessions']:,} sessions created through",
        "each engine's `SessionStore.save()`, from an empty server (`FLUSHALL`) to after",
        "it settled, per session; Redis's default configuration. Everything counts:",
        "values, key names, expiries, the keyspace's dictionaries, and for this engine",
        "the user's index entry and metadata (each signed-in session is another",
        "user's). The keyspace's dictionaries (shown beside the total, from `MEMORY",
        "STATS`) hold an entry per key and per expiry, and bucket arrays that double",
        "as keys are added, so their share moves in steps with the number of keys.",
        "With facts: created with the request facts the metadata middleware stores,",
        "an IP and a 120 character user agent. `SITE_ACTIVITY` on: as signed in, with",
        "the activity sets of the admin's site-wide page (off by default).",
        "",
        "| Session | this engine | of which keyspace | `cache` on django-redis "
        "| of which keyspace | x `cache` | created/s (this / `cache`) |",
        "|---|---|---|---|---|---|---|",
    ]
    for case, title in MEMORY_CASES.items():
        if case not in charon:
            continue  # results from before the case was measured
        mine = charon[case]
        base = cache.get(case)
        theirs = base or cache["signed_in"]
        ratio = mine["bytes_per_session"] / theirs["bytes_per_session"]
        cells = [
            title,
            f"{mine['bytes_per_session']:,.0f} B",
            f"{mine['keyspace_tables_per_session']:,.0f} B",
            f"{base['bytes_per_session']:,.0f} B" if base else "-",
            f"{base['keyspace_tables_per_session']:,.0f} B" if base else "-",
            f"{ratio:.2f}" + ("" if base else " (of signed in)"),
            f"{mine['create_per_second']:,} / "
            + (f"{base['create_per_second']:,}" if base else "-"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "![Memory](images/bench-memory.png)", ""]
    return lines


def _user_ops_table(r: dict[str, Any]) -> list[str]:
    ops = r["user_ops"]
    n = r["args"]["user_ops_size"]
    lines = [
        "## A user's sessions",
        "",
        f"Among {n:,} sessions stored: list a user with 1,000 sessions, and end a user",
        "with 10,000. The other engines keep no per-user index, so both mean reading",
        "every session (Redis `SCAN` and `GET`s, or every row decoded).",
        "",
        "Round trips are the writes this process made to Redis (a pipeline is one);",
        "SQL, the queries it ran.",
        "",
        "| Engine | list 1,000 | round trips / SQL | end 10,000 | round trips / SQL |",
        "|---|---|---|---|---|",
    ]
    for name, o in ops.items():
        lines.append(
            f"| {LABELS[name]} | {o['list_1000_ms']:,} ms | "
            f"{o['list_1000_round_trips']:,} / {o['list_1000_sql']:,} | "
            f"{o['end_10000_ms']:,} ms | "
            f"{o['end_10000_round_trips']:,} / {o['end_10000_sql']:,} |"
        )
    return [*lines, ""]


def _cleanup_table(r: dict[str, Any]) -> list[str]:
    c = r["cleanup"]
    return [
        "## Cleanup",
        "",
        "This engine: `sessions_cleanup` removing stale index entries (expired, or",
        "whose session vanished). `db`: `clear_expired()` deleting expired rows. The",
        "`cache` engines need none (Redis TTLs).",
        "",
        "| Engine | removed | per second |",
        "|---|---|---|",
        *[f"| {LABELS[n]} | {v['removed']:,} | {v['per_second']:,} |" for n, v in c.items()],
        "",
    ]


#: Written by ``python -m benchmarks.sitewide`` (a run of its own: it fills a million sessions).
SITEWIDE = ROOT / "benchmarks" / "sitewide.json"
_SITEWIDE_ROWS = {
    "newest_50": "the 50 most recently seen live sessions (`activity.recent_sessions`)",
    "next_50": 'the next 50 (the "Older" page)',
    "online_counters": '"who is online": users and sessions seen in 5 min, 1 h, 1 day '
    "(`activity.online`)",
    "search_ip_last_hour": "a search by IP within the last hour (reads the newest 5,000 of "
    "the window)",
    "admin_page": "the whole admin page (a superuser, Django's test client: the newest 50 "
    "and the counters)",
}


def _sitewide_table(path: Path) -> list[str]:
    if not path.exists():
        return []
    r = json.loads(path.read_text())
    lines = [
        "## The site-wide sessions page",
        "",
        f"`python -m benchmarks.sitewide` signs in {r['sessions']:,} sessions, each of its own",
        "user, with `SITE_ACTIVITY` on and the engine's `create` function (pipelined), so each",
        "is in its hash slot's activity sets as a sign-in puts it there; then times each read",
        f"{r['reps']} times (medians) on a standalone Redis {r['redis']} on loopback.",
        "",
        f"| {r['sessions']:,} signed-in sessions ({r['keys_in_redis']:,} keys, "
        f"{r['used_memory_mb']:,} MB in Redis) | median |",
        "|---|---|",
    ]
    lines += [f"| {label} | {r['ms'][k]:,.1f} ms |" for k, label in _SITEWIDE_ROWS.items()]
    lines += [
        "",
        "The cost does not grow with the number of sessions: one read of the newest",
        "entry of each of the 16,384 hash slots, then the few slots that hold the newest",
        "entries and the shown sessions' metadata; the counters are one read-only call",
        "per slot. On an empty Redis the counters take about 250 ms, about half of it",
        "this process packing and parsing 16,384 commands and replies, half the server",
        "running them; with a million sessions each slot's sets hold ~60 entries, which",
        f"adds the server's counting. Filling took {r['fill_seconds']:,.0f} s.",
        "",
    ]
    return lines


def _e2e_table(r: dict[str, Any]) -> list[str]:
    e = r["e2e"]
    lines = [
        "## End to end: gunicorn and wrk",
        "",
        "gunicorn (2 sync workers) serves the read-modify-write page on loopback; wrk",
        "(1 thread, 8 connections) picks one of 500 signed-in sessions per request.",
        "",
        "| Engine | requests/s | x floor | p50 | p99 |",
        "|---|---|---|---|---|",
    ]
    for name, v in e.items():
        lines.append(
            f"| {LABELS[name]} | {v['rps']:,.0f} | {v['rps'] / e['floor']['rps']:.2f} | "
            f"{v['p50_ms']:.2f} ms | {v['p99_ms']:.2f} ms |"
        )
    lines += ["", "![End to end](images/bench-e2e.png)", ""]
    return lines


def plots(r: dict[str, Any], images: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images.mkdir(parents=True, exist_ok=True)
    written = []

    q = r["requests"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    _paired_bars(ax, q, ("read", "read-only"), ("rmw", "read-modify-write"))
    ax.set_ylabel("microseconds per request (lower is better)")
    ax.set_title("A signed-in request through Django, per session engine")
    ax.legend()
    fig.tight_layout()
    written.append(_save(fig, images / "bench-requests.png"))

    by = r.get("by_size", {})
    if "sizes" in by:
        sizes = sorted(by["sizes"], key=int)
        fig, ax = plt.subplots(figsize=(9, 4.5))
        for name in ("floor", "charon", "cache_django_redis"):
            for op, style in (("ro", "--"), ("rw", "-")):
                ax.plot([int(s) for s in sizes],
                        [by["sizes"][s]["ops"][op][name]["cpu_us"] for s in sizes],
                        style, marker="o",
                        label=f"{_plain(name)}, {'load' if op == 'ro' else 'save'}")  # fmt: skip
        ax.set_xscale("log")
        ax.set_xlabel("sessions stored (of each candidate, side by side)")
        ax.set_ylabel("CPU microseconds per operation")
        ax.set_ylim(bottom=0)
        ax.set_title("A signed-in load and save as the store grows")
        ax.legend(fontsize=8)
        fig.tight_layout()
        written.append(_save(fig, images / "bench-sizes.png"))

    mem = r["memory"]
    cases = {c: t for c, t in MEMORY_CASES.items() if c in mem["charon"]}
    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.38
    for shift, name in ((-width / 2, "charon"), (width / 2, "cache_django_redis")):
        shown = [(x, c) for x, c in enumerate(cases) if c in mem[name]]
        ax.bar([x + shift for x, _ in shown],
               [mem[name][c]["bytes_per_session"] for _, c in shown], width,
               label=_plain(name))  # fmt: skip
    ax.set_xticks(range(len(cases)), list(cases.values()))
    ax.set_ylabel("bytes of Redis memory per session")
    ax.set_title(f"Redis used_memory per session over {mem['sessions']:,} sessions, same data")
    ax.legend()
    fig.tight_layout()
    written.append(_save(fig, images / "bench-memory.png"))

    ops = r["store"]["ops"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    cpu = {name: {op: ops[op][name]["cpu_us"] for op in ops} for name in ops["ro"]}
    _paired_bars(ax, cpu, ("ro", "read-only load"), ("rw", "read-modify-write"))
    ax.set_ylabel("CPU microseconds per operation, client + Redis")
    ax.set_title("A signed-in session at store level (lower is better)")
    ax.legend()
    fig.tight_layout()
    written.append(_save(fig, images / "bench-store.png"))

    if "e2e" in r:
        e = r["e2e"]
        names = list(e)
        fig, ax = plt.subplots(figsize=(9, 4.5))
        ax.bar(range(len(names)), [e[n]["rps"] for n in names])
        ax.set_xticks(range(len(names)), [_plain(n) for n in names], rotation=20, ha="right",
                      fontsize=8)  # fmt: skip
        ax.set_ylabel("requests per second (higher is better)")
        ax.set_title("gunicorn + wrk, read-modify-write page")
        fig.tight_layout()
        written.append(_save(fig, images / "bench-e2e.png"))
    return written


def _paired_bars(
    ax: Any, figures: dict[str, dict[str, Any]], left: tuple[str, str], right: tuple[str, str]
) -> list[float]:
    """Draw two bars per engine (figure key, legend label); return the right bars' x."""
    width = 0.38
    xs = range(len(figures))
    for (key, label), shift in ((left, -width / 2), (right, width / 2)):
        ax.bar([x + shift for x in xs], [f[key] for f in figures.values()], width, label=label)
    ax.set_xticks(list(xs), [_plain(n) for n in figures], rotation=20, ha="right", fontsize=8)
    return [x + width / 2 for x in xs]


def _save(fig: Any, path: Path) -> Path:
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def write(results: dict[str, Any], docs: Path) -> list[Path]:
    """Write docs/benchmarks.md and the plots; return the paths written."""
    docs.mkdir(parents=True, exist_ok=True)
    md = docs / "benchmarks.md"
    md.write_text(markdown(results))
    return [md, *plots(results, docs / "images")]


if __name__ == "__main__":
    import sys

    source = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "benchmarks" / "results.json"
    docs = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "docs"
    results = json.loads(source.read_text())
    print(targets_text(results))
    for path in write(results, docs):
        print(f"wrote {path}")
