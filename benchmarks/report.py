"""Turn ``benchmarks/results.json`` into docs/benchmarks.md and PNG plots.

python -m benchmarks.report     # rewrite the report from the last results
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


def targets(r: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """Each brief target: (target, measured, how, met)."""
    q = r["requests"]
    rmw_floor = q["charon"]["rmw"] / q["floor"]["rmw"]
    read_floor = q["charon"]["read"] / q["floor"]["read"]
    vs_cache = q["cache_django_redis"]["rmw"] / q["charon"]["rmw"]
    sizes = sorted(r["by_size"]["charon"], key=int)
    small, big = r["by_size"]["charon"][sizes[0]], r["by_size"]["charon"][sizes[-1]]
    flat = max(big["read"] / small["read"], big["rmw"] / small["rmw"])
    mem, tuned = r["memory"]["default"], r["memory"]["tuned"]
    anon = mem["charon"]["anonymous"] / mem["cache_django_redis"]["anonymous"]
    auth = mem["charon"]["authenticated"] / mem["cache_django_redis"]["authenticated"]
    auth_t = tuned["charon"]["authenticated"] / tuned["cache_django_redis"]["authenticated"]
    ops = r["user_ops"]["charon"]
    clean = r["cleanup"]["charon"]["per_second"]
    span = f"{int(sizes[0]):,} to {int(sizes[-1]):,}"
    return [
        ("signed-in read-modify-write request <= 1.15x the floor", f"{rmw_floor:.2f}x",
         "request through Django, medians", rmw_floor <= 1.15),
        ("... and >= 1.5x faster than `cache` on django-redis", f"{vs_cache:.2f}x",
         "same", vs_cache >= 1.5),
        ("read-only request <= 1.1x the floor", f"{read_floor:.2f}x", "same", read_floor <= 1.1),
        (f"load and save flat within 10% ({span} sessions)", f"{flat:.2f}x",
         "store level, slowest of load and save", flat <= 1.10),
        ("list a user with 1,000 sessions in one round trip",
         f"{ops['list_1000_round_trips']} round trip(s)", "writes to the socket, counted",
         ops["list_1000_round_trips"] == 1),
        ("end a user with 10,000 sessions in one round trip",
         f"{ops['end_10000_round_trips']} round trip(s)", "same",
         ops["end_10000_round_trips"] == 1),
        ("anonymous session memory <= 1.2x `cache`", f"{anon:.2f}x", "MEMORY USAGE", anon <= 1.2),
        ("signed-in session memory (with index, metadata) <= 2.5x `cache`", f"{auth:.2f}x",
         "MEMORY USAGE, a user's only session, Redis defaults", auth <= 2.5),
        ("... the same with `hash-max-listpack-value 128`", f"{auth_t:.2f}x",
         "as the production docs recommend", auth_t <= 2.5),
        ("cleanup >= 100,000 stale entries/s", f"{clean:,}/s",
         f"{r['cleanup']['charon']['removed']:,} entries", clean >= 100_000),
    ]  # fmt: skip


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
        "",
        "## The brief's targets",
        "",
        "| Target | Measured | How | Met |",
        "|---|---|---|---|",
    ]
    lines += [f"| {t} | {v} | {h} | {'yes' if ok else '**no**'} |" for t, v, h, ok in targets(r)]
    lines += [
        "",
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


def _by_size_table(r: dict[str, Any]) -> list[str]:
    by = r["by_size"]
    sizes = sorted({s for e in by if e != "bare_redis_py" for s in by[e]}, key=int)
    head = " | ".join(f"{int(s):,} stored" for s in sizes)
    lines = [
        "## Load and save by sessions stored",
        "",
        "Store level (no request): load of a signed-in session, and a",
        "read-modify-write save, in microseconds; read / read-modify-write.",
        "",
        f"| Engine | {head} |",
        "|---|" + "---|" * len(sizes),
    ]
    for name, per in by.items():
        cells = [
            f"{_fmt(per[s]['read'])} / {_fmt(per[s]['rmw'])}" if s in per else "-" for s in sizes
        ]
        lines.append(f"| {LABELS[name]} | {' | '.join(cells)} |")
    lines += ["", "![Load and save by size](images/bench-sizes.png)", ""]
    return lines


def _memory_table(r: dict[str, Any]) -> list[str]:
    lines = [
        "## Redis memory per session",
        "",
        "`MEMORY USAGE` of every key a session uses, with the same data in each engine",
        "(four keys of its own, and for a signed-in session Django's three). For this",
        "engine a signed-in session also has its user's index entry and metadata",
        "(created, last seen); 'next' is one more session of the same user. Redis",
        "keeps a hash compact (listpack) only while every value is at most",
        "`hash-max-listpack-value` bytes, 64 by default; Django's `_auth_user_hash`",
        "with its signature is 82, so the second table raises the limit to 128.",
        "",
    ]
    tables = (("Redis defaults", r["memory"]["default"]),
              ("`hash-max-listpack-value 128`", r["memory"]["tuned"]))  # fmt: skip
    for title, mem in tables:
        base = mem["cache_django_redis"]
        lines += [
            f"{title}:",
            "",
            "| Engine | anonymous | x `cache` | signed in | x `cache` | next of same user |",
            "|---|---|---|---|---|---|",
        ]
        for name, m in mem.items():
            lines.append(
                f"| {LABELS[name]} | {m['anonymous']} B | "
                f"{m['anonymous'] / base['anonymous']:.2f} | {m['authenticated']} B | "
                f"{m['authenticated'] / base['authenticated']:.2f} | {m['authenticated_next']} B |"
            )
        lines.append("")
    lines += ["![Memory](images/bench-memory.png)", ""]
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

    by = r["by_size"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for name, per in by.items():
        if name == "bare_redis_py" or len(per) < 2:
            continue
        sizes = sorted(per, key=int)
        ax.plot([int(s) for s in sizes], [per[s]["rmw"] for s in sizes], marker="o",
                label=_plain(name))  # fmt: skip
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("sessions stored")
    ax.set_ylabel("read-modify-write, microseconds")
    ax.set_title("Cost of a session save as the store grows")
    ax.legend(fontsize=8)
    fig.tight_layout()
    written.append(_save(fig, images / "bench-sizes.png"))

    mem = r["memory"]["default"]
    tuned = r["memory"]["tuned"]
    fig, ax = plt.subplots(figsize=(9, 4.5))
    right = _paired_bars(
        ax, mem, ("anonymous", "anonymous"),
        ("authenticated", "signed in (with index and metadata)"),
    )  # fmt: skip
    ax.scatter(right, [tuned[n]["authenticated"] for n in mem], marker="_", s=400,
               color="black", zorder=3, label="signed in, hash-max-listpack-value 128")  # fmt: skip
    ax.set_ylabel("bytes of Redis memory per session")
    ax.set_title("Redis memory per session, same data")
    ax.legend()
    fig.tight_layout()
    written.append(_save(fig, images / "bench-memory.png"))

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
    md = docs / "benchmarks.md"
    md.write_text(markdown(results))
    return [md, *plots(results, docs / "images")]


if __name__ == "__main__":
    results = json.loads((ROOT / "benchmarks" / "results.json").read_text())
    for path in write(results, ROOT / "docs"):
        print(f"wrote {path.relative_to(ROOT)}")
